import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import formbody from '@fastify/formbody';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyError, FastifyReply } from 'fastify';
import Type from 'typebox';
import { isChallengeId, type Challenge, type ChallengeStore } from '@twofold/state';
import type { AppRecord } from '@twofold/store';
import {
  VerificationError,
  type CodeVerifier,
  type EnrollmentService,
  type StartedEnrollment,
} from '@twofold/verification';
import { Problem } from '../problem.js';
import { renderEnroll, renderEnrolled } from './enroll.page.js';
import { STYLESHEET_PATH, pageCsp } from './html.js';
import { allowedReturnTo } from './return-to.js';
import { STYLESHEET } from './styles.js';
import { renderCodePrompt, renderMessage, renderVerified } from './two-factor.page.js';

export interface HostedPagesDeps {
  challenges: Pick<ChallengeStore, 'get'>;
  verifier: Pick<CodeVerifier, 'verify'>;
  enrollment: Pick<EnrollmentService, 'describe' | 'confirm'>;
  apps: { get(appId: string): Promise<AppRecord | undefined> };
  /** Base URL users reach; https makes the CSRF cookie `Secure` and `__Host-`. */
  publicUrl: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const PromptQuery = Type.Object({
  returnTo: Type.Optional(
    Type.String({ maxLength: 2048, description: 'where to send the user after success' }),
  ),
  backup: Type.Optional(Type.String({ maxLength: 8, description: '1: ask for a backup code' })),
});
const FormBody = Type.Object(
  {
    code: Type.Optional(Type.String({ maxLength: 64 })),
    _csrf: Type.Optional(Type.String({ maxLength: 256 })),
    returnTo: Type.Optional(Type.String({ maxLength: 2048 })),
  },
  { description: 'application/x-www-form-urlencoded, as the page posts it' },
);
const HtmlPage = {
  description: 'an HTML page (text/html)',
  content: { 'text/html': { schema: Type.String() } },
};
const pageResponses = (codes: number[]) =>
  Object.fromEntries(codes.map((code) => [code, HtmlPage])) as Record<number, typeof HtmlPage>;

/** Ends a flow with an HTML page: same headers as every page. */
function sendPage(reply: FastifyReply, status: number, body: string, formTargets: string[] = []) {
  return reply
    .code(status)
    .header('content-security-policy', pageCsp(formTargets))
    .header('cache-control', 'no-store')
    .type('text/html; charset=utf-8')
    .send(body);
}

const targetsOf = (returnTo: string | undefined) => (returnTo ? [new URL(returnTo).origin] : []);

/**
 * The hosted pages users see: the 2FA prompt and enrollment. Server-rendered, no script,
 * a strict CSP per page, CSRF tokens (double submit: a secret in an HttpOnly SameSite
 * cookie, a token in the form). The challenge or enrollment id in the URL is the capability:
 * the user has no app key.
 */
export function hostedPagesRoute(deps: HostedPagesDeps): FastifyPluginAsyncTypebox {
  const secure = deps.publicUrl.startsWith('https:');
  return async (app) => {
    // Browsers post forms: the pages take urlencoded bodies only.
    app.removeAllContentTypeParsers();
    await app.register(formbody);
    await app.register(cookie);
    await app.register(csrf, {
      cookieKey: secure ? '__Host-twofold-csrf' : 'twofold-csrf',
      cookieOpts: { path: '/', sameSite: 'strict', httpOnly: true, secure },
    });

    // Errors inside the pages are pages too, never JSON.
    app.setErrorHandler((error: FastifyError | Problem, request, reply) => {
      if (error.code === 'FST_CSRF_INVALID_TOKEN' || error.code === 'FST_CSRF_MISSING_SECRET') {
        return sendPage(
          reply,
          403,
          renderMessage({
            title: 'This form has expired',
            message:
              'For your safety the form could not be accepted (it was open too long, or cookies are blocked). Load the page again and type a fresh code.',
            action: { href: request.url, label: 'Load the page again' },
          }),
        );
      }
      if (error instanceof Problem && error.status === 429) {
        return sendPage(
          reply,
          429,
          renderMessage({
            title: 'Too many attempts',
            message: `${error.detail}.`,
            action: { href: request.url, label: 'Try again' },
          }),
        );
      }
      if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
        return sendPage(
          reply,
          error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 413 : 415,
          renderMessage({
            title: 'The form could not be read',
            message: 'Load the page again and submit the form once more.',
          }),
        );
      }
      if ('validation' in error && error.validation) {
        return sendPage(
          reply,
          400,
          renderMessage({ title: 'The link is not valid', message: 'Go back to the app and sign in again.' }),
        );
      }
      request.log.error({ err: error }, 'hosted page failed');
      return sendPage(
        reply,
        500,
        renderMessage({
          title: 'Something went wrong',
          message: 'Try again in a moment. If it keeps failing, contact your administrator.',
        }),
      );
    });

    app.get(STYLESHEET_PATH, { schema: { hide: true } }, async (_request, reply) =>
      reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(STYLESHEET),
    );

    const expiredChallenge = () =>
      renderMessage({
        title: 'This sign-in link has expired',
        message:
          'It was used already, or it is older than five minutes. Go back to the app and sign in again.',
      });

    async function promptContext(challengeId: string, rawReturnTo: unknown) {
      const challenge: Challenge | undefined = isChallengeId(challengeId)
        ? await deps.challenges.get(challengeId)
        : undefined;
      if (!challenge) return undefined;
      const appRecord = await deps.apps.get(challenge.appId);
      const returnTo = allowedReturnTo(rawReturnTo, appRecord?.origins ?? []);
      return { challenge, appName: appRecord?.name ?? challenge.appId, returnTo };
    }

    app.get(
      '/2fa/:challengeId',
      {
        schema: {
          tags: ['hosted pages'],
          summary: 'The 2FA prompt: send the user here with the challengeId of a `challenge` decision',
          description:
            '`returnTo` must be on an origin the app registered; after a right code the user is sent there, otherwise shown a success page.',
          params: Type.Object({ challengeId: Type.String({ maxLength: 64 }) }),
          querystring: PromptQuery,
          response: pageResponses([200, 404]),
        },
      },
      async (request, reply) => {
        const context = await promptContext(request.params.challengeId, request.query.returnTo);
        if (!context) return sendPage(reply, 404, expiredChallenge());
        if (request.query.returnTo && !context.returnTo) {
          request.log.warn(
            { appId: context.challenge.appId },
            'returnTo is not on a registered origin of the app; ignored',
          );
        }
        const page = renderCodePrompt({
          challengeId: context.challenge.challengeId,
          username: context.challenge.username,
          appName: context.appName,
          csrfToken: reply.generateCsrf(),
          returnTo: context.returnTo,
          backup: request.query.backup === '1',
        });
        return sendPage(reply, 200, page, targetsOf(context.returnTo));
      },
    );

    app.post(
      '/2fa/:challengeId',
      {
        preHandler: app.csrfProtection,
        schema: {
          tags: ['hosted pages'],
          summary:
            'The 2FA prompt form: verifies the code, then redirects to returnTo (303) or shows success',
          params: Type.Object({ challengeId: Type.String({ maxLength: 64 }) }),
          querystring: PromptQuery,
          body: FormBody,
          consumes: ['application/x-www-form-urlencoded'],
          response: {
            ...pageResponses([200, 400, 403, 404, 410, 422, 423, 429, 503]),
            303: { description: 'to returnTo' },
          },
        },
      },
      async (request, reply) => {
        const { challengeId } = request.params;
        const context = await promptContext(challengeId, request.body.returnTo ?? request.query.returnTo);
        if (!context) return sendPage(reply, 404, expiredChallenge());
        const backup = request.query.backup === '1';
        const targets = targetsOf(context.returnTo);
        const again = (status: number, error: string) =>
          sendPage(
            reply,
            status,
            renderCodePrompt({
              challengeId,
              username: context.challenge.username,
              appName: context.appName,
              csrfToken: reply.generateCsrf(),
              returnTo: context.returnTo,
              backup,
              error,
            }),
            targets,
          );
        const code = (request.body.code ?? '').trim();
        if (!code) return again(400, 'Type the code from your authenticator app.');

        let result;
        try {
          result = await deps.verifier.verify(challengeId, code);
        } catch (err) {
          if (!(err instanceof VerificationError)) throw err;
          switch (err.code) {
            case 'malformed':
              return again(
                400,
                backup
                  ? 'A backup code has 10 letters and digits, like 3f7k2-9qd4m.'
                  : 'A code from the app has 6 digits (some apps show 8). Type only the digits.',
              );
            case 'not_found':
              return sendPage(reply, 404, expiredChallenge());
            case 'conflict':
              return sendPage(
                reply,
                409,
                renderMessage({
                  title: 'Your authenticator cannot be used',
                  message: 'Ask your administrator to reset your authenticator, then set it up again.',
                }),
              );
            case 'unavailable':
              return sendPage(
                reply,
                503,
                renderMessage({
                  title: 'Try again in a moment',
                  message:
                    'The code could not be checked right now. Wait for the next code in your app, then try again.',
                  action: { href: request.url, label: 'Try again' },
                }),
              );
          }
        }
        if (result.verified) {
          if (context.returnTo)
            return reply.header('cache-control', 'no-store').redirect(context.returnTo, 303);
          return sendPage(reply, 200, renderVerified({ appName: context.appName }));
        }
        switch (result.reason) {
          case 'bad_code':
            return again(
              422,
              result.attemptsLeft > 0
                ? `That code is not right. Check that your phone's clock is right and type the code shown now. ${result.attemptsLeft} ${result.attemptsLeft === 1 ? 'attempt' : 'attempts'} left.`
                : 'That code is not right, and that was the last attempt. Go back to the app and sign in again.',
            );
          case 'replayed':
            return again(
              422,
              'That code was already used. Wait until your app shows a new code, then type it.',
            );
          case 'expired':
            return sendPage(
              reply,
              410,
              renderMessage({
                title: 'Too many wrong codes',
                message: `This sign-in cannot be confirmed any more. Go back to ${context.appName} and sign in again.`,
              }),
            );
          case 'locked':
            return sendPage(
              reply,
              423,
              renderMessage({
                title: 'Sign-in temporarily locked',
                message:
                  'There were too many failed attempts for your account. Wait a while and try again, or ask your administrator to unlock it.',
              }),
            );
        }
      },
    );

    const expiredEnrollment = (
      message = 'It was completed already, or it is older than 15 minutes. Start again from the app.',
    ) => renderMessage({ title: 'This setup link has expired', message });

    const cannotContinue = () =>
      renderMessage({
        title: 'This setup cannot be completed',
        message: 'Its key can no longer be read. Start setting up your authenticator again from the app.',
      });

    /** The enrollment's page data; a page instead when it is gone (404), unusable (409) or unreadable now (503). */
    async function enrollContext(
      reply: FastifyReply,
      url: string,
      enrollmentId: string,
      rawReturnTo: unknown,
    ) {
      if (!UUID.test(enrollmentId)) return { page: sendPage(reply, 404, expiredEnrollment()) };
      let started;
      try {
        started = await deps.enrollment.describe(enrollmentId);
      } catch (err) {
        if (!(err instanceof VerificationError)) throw err;
        switch (err.code) {
          case 'not_found':
            return { page: sendPage(reply, 404, expiredEnrollment()) };
          case 'conflict':
            return { page: sendPage(reply, 409, cannotContinue()) };
          case 'unavailable':
            return {
              page: sendPage(
                reply,
                503,
                renderMessage({
                  title: 'Try again in a moment',
                  message: 'This setup could not be loaded right now. Nothing was changed.',
                  action: { href: url, label: 'Try again' },
                }),
              ),
            };
          default:
            throw err;
        }
      }
      const appRecord = started.appId ? await deps.apps.get(started.appId) : undefined;
      const returnTo = allowedReturnTo(rawReturnTo, appRecord?.origins ?? []);
      return { started, appName: appRecord?.name, returnTo };
    }

    function enrollPage(
      reply: FastifyReply,
      context: { started: StartedEnrollment; returnTo: string | undefined },
      status: number,
      error?: string,
    ) {
      const params = new URL(context.started.otpauthUri).searchParams;
      return sendPage(
        reply,
        status,
        renderEnroll({
          enrollmentId: context.started.enrollmentId,
          username: context.started.username,
          qrSvg: context.started.qrSvg,
          secret: context.started.secret,
          algorithm: params.get('algorithm') ?? 'SHA1',
          digits: Number(params.get('digits') ?? 6),
          period: Number(params.get('period') ?? 30),
          issuer: params.get('issuer') ?? 'twofold',
          csrfToken: reply.generateCsrf(),
          returnTo: context.returnTo,
          error,
        }),
        targetsOf(context.returnTo),
      );
    }

    app.get(
      '/enroll/:enrollmentId',
      {
        schema: {
          tags: ['hosted pages'],
          summary:
            'Enrollment: QR code, manual key and a confirmation form (enrollUrl of POST /v1/enrollments)',
          params: Type.Object({ enrollmentId: Type.String({ maxLength: 64 }) }),
          querystring: Type.Object({ returnTo: Type.Optional(Type.String({ maxLength: 2048 })) }),
          response: pageResponses([200, 404, 409, 503]),
        },
      },
      async (request, reply) => {
        const context = await enrollContext(
          reply,
          request.url,
          request.params.enrollmentId,
          request.query.returnTo,
        );
        if ('page' in context) return context.page;
        return enrollPage(reply, context, 200);
      },
    );

    app.post(
      '/enroll/:enrollmentId',
      {
        preHandler: app.csrfProtection,
        schema: {
          tags: ['hosted pages'],
          summary: 'The enrollment form: confirms with a code, then shows the backup codes once',
          params: Type.Object({ enrollmentId: Type.String({ maxLength: 64 }) }),
          querystring: Type.Object({ returnTo: Type.Optional(Type.String({ maxLength: 2048 })) }),
          body: FormBody,
          consumes: ['application/x-www-form-urlencoded'],
          response: pageResponses([200, 400, 403, 404, 409, 422, 429, 503]),
        },
      },
      async (request, reply) => {
        const { enrollmentId } = request.params;
        const context = await enrollContext(
          reply,
          request.url,
          enrollmentId,
          request.body.returnTo ?? request.query.returnTo,
        );
        if ('page' in context) return context.page;
        const code = (request.body.code ?? '').replace(/\s/g, '');
        if (!code) return enrollPage(reply, context, 400, 'Type the code your authenticator app shows now.');
        let done;
        try {
          done = await deps.enrollment.confirm(enrollmentId, code);
        } catch (err) {
          if (!(err instanceof VerificationError)) throw err;
          if (err.code === 'malformed')
            return enrollPage(
              reply,
              context,
              400,
              `Type the ${new URL(context.started.otpauthUri).searchParams.get('digits') ?? 6}-digit code your app shows now.`,
            );
          if (err.code === 'not_found')
            return sendPage(
              reply,
              404,
              /too many/.test(err.message)
                ? expiredEnrollment(
                    'There were too many wrong codes for this setup. Start again from the app.',
                  )
                : expiredEnrollment(),
            );
          if (err.code === 'conflict')
            return sendPage(
              reply,
              409,
              /start enrollment again/.test(err.message)
                ? cannotContinue()
                : renderMessage({
                    title: 'You already have an authenticator',
                    message:
                      'Your account is set up already. If you lost your phone, ask your administrator to reset it.',
                  }),
            );
          // Nothing was set up and the setup stays: the same form takes the code again.
          if (err.code === 'unavailable')
            return enrollPage(
              reply,
              context,
              503,
              'Nothing was set up: it could not be saved right now. Wait a moment, then type the code your app shows now.',
            );
          throw err;
        }
        if (!done)
          return enrollPage(
            reply,
            context,
            422,
            "That code is not right. Check that your phone's clock is right and type the code shown now.",
          );
        return sendPage(
          reply,
          200,
          renderEnrolled({
            username: done.username,
            backupCodes: done.backupCodes,
            returnTo: context.returnTo,
            appName: context.appName,
          }),
        );
      },
    );
  };
}
