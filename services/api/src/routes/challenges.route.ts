import Type from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { isChallengeId, type ChallengeStore } from '@twofold/state';
import { ForeignChallengeError, type CodeVerifier } from '@twofold/verification';
import type { Authenticator } from '../auth.js';
import { problems } from '../problem.js';

export const VerifyResponse = Type.Object({
  verified: Type.Boolean(),
  method: Type.Optional(Type.Union([Type.Literal('totp'), Type.Literal('backup_code')])),
  reason: Type.Optional(
    Type.Union([
      Type.Literal('bad_code'),
      Type.Literal('replayed'),
      Type.Literal('expired'),
      Type.Literal('locked'),
    ]),
  ),
  attemptsLeft: Type.Optional(Type.Integer()),
});

/** POST /v1/challenges/{challengeId}/verify: an app submits the code its user typed. */
export function challengesRoute(deps: {
  auth: Authenticator;
  verifier: CodeVerifier;
  /** Kept for the wiring's sake: the verifier reads the challenge itself. */
  challenges?: ChallengeStore;
}): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/v1/challenges/:challengeId/verify',
      {
        schema: {
          tags: ['second factor'],
          summary: 'Verify a TOTP or backup code for a challenge (each code is accepted once)',
          params: Type.Object({ challengeId: Type.String({ maxLength: 64 }) }),
          body: Type.Object(
            { code: Type.String({ minLength: 1, maxLength: 32 }) },
            { additionalProperties: false },
          ),
          response: { 200: VerifyResponse },
        },
      },
      async (request) => {
        const caller = await deps.auth.requireApp(request);
        const { challengeId } = request.params;
        if (!isChallengeId(challengeId))
          throw problems.notFound('unknown or expired challenge; sign in again to get a new one');
        // One script counts the attempt and refuses another app's challenge (no attempt counted).
        let result;
        try {
          result = await deps.verifier.verify(challengeId, request.body.code, { appId: caller.appId });
        } catch (err) {
          if (!(err instanceof ForeignChallengeError)) throw err;
          throw problems.forbidden(`this challenge belongs to app ${err.ownerAppId}, not ${caller.appId}`);
        }
        return result.verified
          ? { verified: true, method: result.method }
          : { verified: false, reason: result.reason, attemptsLeft: result.attemptsLeft };
      },
    );
  };
}
