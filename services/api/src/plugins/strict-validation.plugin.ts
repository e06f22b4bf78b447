import { isIP } from 'node:net';
import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';
import { ajv as eventAjv } from '@twofold/contracts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * JSON bodies are validated as sent: `{"code": 123456}` or `{"username": 42}` is a wrong
 * type (400), not silently turned into a string. Bodies use the strict validator of the
 * event contracts (no coercion, the same formats); query strings, path parameters and
 * headers arrive as text, so they keep fastify's coercion ("5000" → 5000).
 */
export function registerStrictBodyValidation(app: FastifyInstance): void {
  const textAjv = new Ajv({
    coerceTypes: 'array',
    useDefaults: true,
    removeAdditional: false,
    allErrors: false,
    strict: false,
  });
  textAjv.addFormat('uuid', UUID);
  textAjv.addFormat('ip', { type: 'string', validate: (v: string) => isIP(v) !== 0 });
  textAjv.addFormat('date-time', { type: 'string', validate: (v: string) => !Number.isNaN(Date.parse(v)) });
  textAjv.addFormat('uri', { type: 'string', validate: (v: string) => URL.canParse(v) });
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? eventAjv.compile(schema) : textAjv.compile(schema),
  );
}
