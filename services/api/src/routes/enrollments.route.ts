import Type from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { EnrollmentService } from '@twofold/verification';
import type { Authenticator } from '../auth.js';
import { Problem } from '../problem.js';

const Algorithm = Type.Union([Type.Literal('SHA1'), Type.Literal('SHA256'), Type.Literal('SHA512')]);
const Digits = Type.Union([Type.Literal(6), Type.Literal(8)]);
const BackupCodes = Type.Object({
  username: Type.String(),
  backupCodes: Type.Array(Type.String(), { description: 'shown this once; each works once' }),
});

const wrongCode = () =>
  new Problem(
    422,
    'wrong-code',
    'Wrong code',
    'the code does not match the key; check that the device clock is right and type the current code',
  );

/** Enrollment: start (QR), confirm, import an existing key. Apps call these for their users. */
export function enrollmentsRoute(deps: {
  auth: Authenticator;
  enrollment: EnrollmentService;
  publicUrl: string;
}): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/v1/enrollments',
      {
        schema: {
          tags: ['enrollment'],
          summary: 'Start enrolling a user: a new secret, its otpauth URI and QR code',
          body: Type.Object(
            {
              username: Type.String({ minLength: 1, maxLength: 256 }),
              algorithm: Type.Optional(Algorithm),
              digits: Type.Optional(Digits),
            },
            { additionalProperties: false },
          ),
          response: {
            201: Type.Object({
              enrollmentId: Type.String(),
              otpauthUri: Type.String(),
              qrSvg: Type.String(),
              enrollUrl: Type.String({ description: 'the hosted enrollment page to send the user to' }),
              expiresAt: Type.String(),
            }),
          },
        },
      },
      async (request, reply) => {
        const caller = await deps.auth.requireApp(request);
        const started = await deps.enrollment.start({ ...request.body, appId: caller.appId });
        return reply.code(201).send({
          enrollmentId: started.enrollmentId,
          otpauthUri: started.otpauthUri,
          qrSvg: started.qrSvg,
          enrollUrl: `${deps.publicUrl}/enroll/${started.enrollmentId}`,
          expiresAt: started.expiresAt,
        });
      },
    );

    app.post(
      '/v1/enrollments/:enrollmentId/confirm',
      {
        schema: {
          tags: ['enrollment'],
          summary: 'Confirm an enrollment with a current code; returns the backup codes once',
          params: Type.Object({ enrollmentId: Type.String({ format: 'uuid' }) }),
          body: Type.Object(
            { code: Type.String({ minLength: 1, maxLength: 16 }) },
            { additionalProperties: false },
          ),
          response: { 200: BackupCodes },
        },
      },
      async (request) => {
        const caller = await deps.auth.requireApp(request);
        // Only the app that started it: another app's is unknown to the caller (404).
        const done = await deps.enrollment.confirm(request.params.enrollmentId, request.body.code, {
          appId: caller.appId,
        });
        if (!done) throw wrongCode();
        return done;
      },
    );

    app.post(
      '/v1/enrollments/import',
      {
        schema: {
          tags: ['enrollment'],
          summary: "Reuse the user's existing authenticator key (base32); a current code proves it",
          body: Type.Object(
            {
              username: Type.String({ minLength: 1, maxLength: 256 }),
              secret: Type.String({ minLength: 1, maxLength: 256 }),
              code: Type.String({ minLength: 1, maxLength: 16 }),
              algorithm: Type.Optional(Algorithm),
              digits: Type.Optional(Digits),
              period: Type.Optional(Type.Integer({ minimum: 15, maximum: 120 })),
            },
            { additionalProperties: false },
          ),
          response: { 201: BackupCodes },
        },
      },
      async (request, reply) => {
        await deps.auth.requireApp(request);
        const done = await deps.enrollment.importKey(request.body);
        if (!done) throw wrongCode();
        return reply.code(201).send(done);
      },
    );
  };
}
