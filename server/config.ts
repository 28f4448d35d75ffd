import { z } from 'zod';

import { DEFAULT_TICK_MS } from '../protocol/stocks';

/**
 * A variable set to the empty string (`PORT=` in an .env file or a CI template) means "not
 * set", as `process.env.PORT || 4561` did in the original; without this, coercion would read
 * it as 0.
 */
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema);

const envSchema = z.object({
  PORT: optional(z.coerce.number().int().min(0).max(65_535).default(4561)),
  // Loopback by default: a demo should not be reachable from the network unless asked to be.
  HOST: optional(z.string().default('127.0.0.1')),
  LOG_LEVEL: optional(
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  TICK_MS: optional(z.coerce.number().int().min(10).max(3_600_000).default(DEFAULT_TICK_MS)),
  /** Relative paths are taken from the project root, so `npm start` finds the same file from anywhere. */
  STATE_FILE: optional(z.string().default('data/state.json')),
  OPS_PER_SECOND: optional(z.coerce.number().int().min(1).max(1_000_000).default(50)),
  CONTROL_TOKEN: optional(z.string().min(8, { error: 'must be at least 8 characters' }).optional()),
  CORS_ORIGINS: optional(
    z
      .string()
      .default('')
      .transform((list) =>
        list
          .split(',')
          .map((origin) => origin.trim())
          .filter(Boolean),
      )
      .pipe(z.array(z.url({ error: 'must be a comma-separated list of origins' }))),
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

/** Reads the configuration from the environment; throws one readable error listing every bad variable. */
export function readConfig(env: NodeJS.ProcessEnv): ServerConfig {
  const result = envSchema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  throw new Error(`invalid configuration: ${problems.join('; ')}`);
}
