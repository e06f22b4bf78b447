import {
  deepFreeze,
  readEnv,
  commonEnvSpec,
  toCommonConfig,
  port,
  str,
  url,
  type CommonConfig,
} from '@twofold/config';

export const apiEnvSpec = {
  ...commonEnvSpec,
  API_PORT: port({ default: 8080, desc: 'HTTP port of the api' }),
  API_HOST: str({ default: '0.0.0.0' }),
  TWOFOLD_ADMIN_KEY: str({ desc: 'bearer key of the admin routes (at least 32 characters)' }),
  TWOFOLD_PUBLIC_URL: url({
    default: 'http://127.0.0.1:8080',
    desc: 'base URL users reach for hosted pages',
  }),
} as const;

export interface ApiConfig extends CommonConfig {
  readonly http: { readonly port: number; readonly host: string; readonly publicUrl: string };
  readonly adminKey: string;
}

export function loadApiConfig(env: Record<string, string | undefined> = process.env): ApiConfig {
  const raw = readEnv(apiEnvSpec, env);
  return deepFreeze({
    ...toCommonConfig(raw, 'api'),
    http: { port: raw.API_PORT, host: raw.API_HOST, publicUrl: raw.TWOFOLD_PUBLIC_URL },
    adminKey: raw.TWOFOLD_ADMIN_KEY,
  });
}
