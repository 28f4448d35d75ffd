import { z } from 'zod';

import { DEFAULT_TICK_MS } from '../protocol/stocks';

/** Decimal digits only: Number() would also take `0x10`, `1e3`, `+5` or `Infinity`. */
const integer = (min: number, max: number, fallback: number) =>
  z
    .string()
    .regex(/^\s*\d+\s*$/, { error: 'must be a whole number in decimal digits' })
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .default(fallback);

/** A comma-separated list, each entry trimmed, empty entries dropped. */
const list = <T extends z.ZodType<unknown, string>>(entry: T, fallback = '', min = 0) =>
  z
    .string()
    .default(fallback)
    .transform((text) => text.split(',').flatMap((item) => item.trim() || []))
    .pipe(z.array(entry).min(min));

/** `.example.com` stands for that domain and its subdomains, `*` for any name (server/hosts.ts). */
const HOST_ENTRY = /^(?:\*|\.?[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?)$/i;
const HOST_ERROR = 'must be a comma-separated list of host names, .domain names or *';
const ORIGIN_ERROR = 'must be origins as browsers send them: lower case, no path, no default port';
const REDIS_ERROR = 'must be a redis:// or rediss:// URL';
const PROXY = z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6()]);
const PROXY_ERROR = 'must be a number of proxies, or a comma-separated list of their addresses';
const TRANSPORT = z.enum(['websocket', 'polling'], { error: 'must list websocket and/or polling' });

const envSchema = z.object({
  PORT: integer(0, 65_535, 4561),
  // Loopback by default: a demo should not be reachable from the network unless asked to be.
  HOST: z.string().default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TICK_MS: integer(10, 3_600_000, DEFAULT_TICK_MS),
  /** Relative to the project root, so the same file is found from any working directory. */
  STATE_FILE: z.string().default('data/state.json'),
  OPS_PER_SECOND: integer(1, 1_000_000, 50),
  CONTROL_TOKEN: z.string().min(8, { error: 'must be at least 8 characters' }).optional(),
  CORS_ORIGINS: list(z.string().refine((u) => URL.parse(u)?.origin === u, { error: ORIGIN_ERROR })),
  /** Host names served besides localhost and IP addresses (DNS rebinding, server/hosts.ts). */
  ALLOWED_HOSTS: list(z.string().regex(HOST_ENTRY, { error: HOST_ERROR })),
  /** Set: this node joins the cluster sharing this Redis (README, "Operating a cluster"). */
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: REDIS_ERROR }).optional(),
  /** Set by `npm run dev`: the shell loads the client from Angular's dev server (ng serve). */
  CLIENT_DEV_SERVER: z.stringbool().default(false),
  /** Express's `trust proxy`: how many proxies in front (0: none), or their addresses, subnets. */
  TRUST_PROXY: z.union([integer(0, 100, 0), list(PROXY)], { error: PROXY_ERROR }),
  /** `websocket` alone lets a load balancer without sticky sessions spread the clients. */
  TRANSPORTS: list(TRANSPORT, 'websocket,polling', 1),
});

/** Config from the environment; one error lists every bad variable; blank (`PORT=`) means unset. */
export function readConfig(env: NodeJS.ProcessEnv) {
  const set = Object.entries(env).filter(([, value]) => value?.trim());
  const result = envSchema.safeParse(Object.fromEntries(set));
  if (result.success) return result.data;
  const problems = result.error.issues.map(({ path, message }) => `${path.join('.')}: ${message}`);
  throw new Error(`invalid configuration: ${problems.join('; ')}`);
}
