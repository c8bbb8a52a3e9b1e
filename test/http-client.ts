// A small HTTP/1.1 client over node:http for tests that need control of the connection: send a
// body slowly, stop half-way, or close the socket while the server is still working.
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from 'node:http';

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** Parsed JSON body (throws if it is not JSON). */
  json(): any;
  ms: number;
}

export interface OpenRequest {
  req: ClientRequest;
  /** Settles with the answer, or rejects if the connection ends without one. */
  answer: Promise<HttpAnswer>;
}

/** Starts a POST without sending its body: the caller writes, ends or destroys `req`. */
export function openPost(url: string, headers: Record<string, string | number> = {}): OpenRequest {
  const started = performance.now();
  const req = httpRequest(url, { method: 'POST', headers, agent: false });
  const answer = new Promise<HttpAnswer>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body), ms: performance.now() - started });
      });
    });
  });
  // A test that destroys the request does not wait for this.
  answer.catch(() => {});
  return { req, answer };
}

export function post(url: string, body: Buffer, headers: Record<string, string | number> = {}): Promise<HttpAnswer> {
  const { req, answer } = openPost(url, { 'content-type': 'application/octet-stream', 'content-length': body.length, ...headers });
  req.end(body);
  return answer;
}

/** `work`, or a rejection after `ms`, so a test that waits on the server fails instead of hanging. */
export function within<T>(work: Promise<T>, ms: number, what = 'answer'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export async function until(condition: () => boolean, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The value of one sample in a Prometheus text exposition, or 0 when absent. */
export function sample(metrics: string, series: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}
