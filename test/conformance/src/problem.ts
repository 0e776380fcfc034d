import { expect } from 'vitest';

/** Asserts an RFC 9457 problem+json response with the stable `code`, and returns its body. */
export async function expectProblem(
  res: Response,
  status: number,
  code: string,
): Promise<Record<string, unknown>> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({
    status,
    code,
    type: expect.any(String),
    title: expect.any(String),
    detail: expect.any(String),
  });
  expect(body.request_id).toBe(res.headers.get('x-request-id'));
  expect(JSON.stringify(body)).not.toMatch(/\.ts:\d+|node_modules|SQLITE_|stack/);
  return body;
}
