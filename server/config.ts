import { z } from 'zod';

import { DEFAULT_TICK_MS } from '../protocol/stocks';

/** A variable that is empty or only whitespace (`PORT=` in an .env file) means "not set". */
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess(
    (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
    schema,
  );

/** Decimal digits only: Number() would also take `0x10`, `1e3`, `+5` or `Infinity`. */
const integer = (min: number, max: number, fallback: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, { error: 'must be a whole number in decimal digits' })
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .default(fallback);

/** `.example.com` stands for that domain and its subdomains, `*` for any name (server/hosts.ts). */
const HOST_ENTRY = /^(?:\*|\.?[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?)$/i;

/** A comma-separated list, each entry trimmed, empty entries dropped. */
const commaList = z
  .string()
  .default('')
  .transform((text) =>
    text
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean),
  );

const envSchema = z.object({
  PORT: optional(integer(0, 65_535, 4561)),
  // Loopback by default: a demo should not be reachable from the network unless asked to be.
  HOST: optional(z.string().default('127.0.0.1')),
  LOG_LEVEL: optional(
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  TICK_MS: optional(integer(10, 3_600_000, DEFAULT_TICK_MS)),
  /** Relative to the project root, so the same file is found from any working directory. */
  STATE_FILE: optional(z.string().default('data/state.json')),
  OPS_PER_SECOND: optional(integer(1, 1_000_000, 50)),
  CONTROL_TOKEN: optional(z.string().min(8, { error: 'must be at least 8 characters' }).optional()),
  CORS_ORIGINS: optional(
    commaList.pipe(z.array(z.url({ error: 'must be a comma-separated list of origins' }))),
  ),
  /** Host names served besides localhost and IP addresses (DNS rebinding, server/hosts.ts). */
  ALLOWED_HOSTS: optional(
    commaList.pipe(
      z.array(
        z.string().regex(HOST_ENTRY, {
          error: 'must be a comma-separated list of host names, .domain names or *',
        }),
      ),
    ),
  ),
  /** Set: this node joins the cluster sharing this Redis (README, "Operating a cluster"). */
  REDIS_URL: optional(
    z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional(),
  ),
  /** Set by `npm run dev`: the shell loads the client from Angular's dev server (ng serve). */
  CLIENT_DEV_SERVER: optional(z.stringbool().default(false)),
  /** `websocket` alone lets a load balancer without sticky sessions spread the clients. */
  TRANSPORTS: optional(
    z
      .string()
      .default('websocket,polling')
      .transform((list) => list.split(',').map((name) => name.trim()))
      .pipe(
        z
          .array(z.enum(['websocket', 'polling'], { error: 'must list websocket and/or polling' }))
          .min(1),
      ),
  ),
});

export type ServerConfig = z.infer<typeof envSchema>;

/** Reads the configuration from the environment; one error lists every bad variable. */
export function readConfig(env: NodeJS.ProcessEnv): ServerConfig {
  const result = envSchema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  throw new Error(`invalid configuration: ${problems.join('; ')}`);
}
