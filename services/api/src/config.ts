import {
  deepFreeze,
  integer,
  keyRing,
  listenHost,
  readEnv,
  commonEnvSpec,
  webhookTargetEnvSpec,
  toCommonConfig,
  port,
  str,
  url,
  ConfigError,
  type CommonConfig,
} from '@twofold/config';

export const apiEnvSpec = {
  ...commonEnvSpec,
  ...webhookTargetEnvSpec,
  API_PORT: port({ default: 8080, desc: 'HTTP port of the api' }),
  API_HOST: listenHost({
    default: '::',
    desc: 'address the api listens on: :: (every IPv6 and IPv4 address; 0.0.0.0 where the host has no IPv6) or one address',
  }),
  TWOFOLD_ADMIN_KEY: str({ desc: 'bearer key of the admin routes (at least 32 characters)' }),
  TWOFOLD_PUBLIC_URL: url({
    default: 'http://127.0.0.1:8080',
    desc: 'base URL users reach for hosted pages',
  }),
  TWOFOLD_MASTER_KEYS: keyRing({ desc: 'key ring for TOTP secrets at rest: id:base64(32 bytes)[,id:key…]' }),
  TWOFOLD_ACTIVE_KEY_ID: str({ desc: 'the key id of TWOFOLD_MASTER_KEYS that encrypts new secrets' }),
  // 0..10 is what libs/otp's verifyTotp accepts; outside it every verification would throw (a 500).
  TOTP_WINDOW: integer({ min: 0, max: 10 })({
    default: 1,
    desc: 'time steps accepted either side of now (±1 = 30 s)',
  }),
  // Requests per minute: a fraction or a negative count means nothing to the limiter.
  RATE_LIMIT_VERIFY_PER_CHALLENGE: integer({ min: 0 })({
    default: 10,
    desc: 'code submissions per minute per challenge or pending enrollment (API and hosted page together); 0 = off',
  }),
  RATE_LIMIT_VERIFY_PER_APP: integer({ min: 0 })({
    default: 60_000,
    desc: 'code verifications per minute per app key; 0 = off',
  }),
  RATE_LIMIT_EVENTS_PER_APP: integer({ min: 0 })({
    default: 300_000,
    desc: 'login events per minute per app key; 0 = off',
  }),
} as const;

export interface ApiConfig extends CommonConfig {
  readonly http: { readonly port: number; readonly host: string; readonly publicUrl: string };
  readonly adminKey: string;
  /** Networks a webhook URL may not name by address (WEBHOOK_DENIED_NETWORKS), as CIDRs. */
  readonly webhookDeniedNetworks: readonly string[];
  readonly secrets: { readonly masterKeys: ReadonlyMap<string, Buffer>; readonly activeKeyId: string };
  readonly totpWindow: number;
  readonly rateLimits: {
    readonly verifyPerChallenge: number;
    readonly verifyPerApp: number;
    readonly eventsPerApp: number;
  };
}

export function loadApiConfig(env: Record<string, string | undefined> = process.env): ApiConfig {
  const raw = readEnv(apiEnvSpec, env);
  if (!raw.TWOFOLD_MASTER_KEYS.has(raw.TWOFOLD_ACTIVE_KEY_ID)) {
    throw new ConfigError([
      `TWOFOLD_ACTIVE_KEY_ID: "${raw.TWOFOLD_ACTIVE_KEY_ID}" is not a key id of TWOFOLD_MASTER_KEYS`,
    ]);
  }
  if (raw.TWOFOLD_ADMIN_KEY.length < 32) {
    throw new ConfigError(['TWOFOLD_ADMIN_KEY: must be at least 32 characters (a random secret)']);
  }
  return deepFreeze({
    ...toCommonConfig(raw, 'api'),
    http: { port: raw.API_PORT, host: raw.API_HOST, publicUrl: raw.TWOFOLD_PUBLIC_URL },
    adminKey: raw.TWOFOLD_ADMIN_KEY,
    webhookDeniedNetworks: raw.WEBHOOK_DENIED_NETWORKS,
    secrets: { masterKeys: raw.TWOFOLD_MASTER_KEYS, activeKeyId: raw.TWOFOLD_ACTIVE_KEY_ID },
    totpWindow: raw.TOTP_WINDOW,
    rateLimits: {
      verifyPerChallenge: raw.RATE_LIMIT_VERIFY_PER_CHALLENGE,
      verifyPerApp: raw.RATE_LIMIT_VERIFY_PER_APP,
      eventsPerApp: raw.RATE_LIMIT_EVENTS_PER_APP,
    },
  });
}
