// The real Prometheus (Debian's package) scraping the real service on loopback, with the shipped
// deploy/prometheus configuration: the multiply-add rate and a latency quantile it computes must
// match the requests this test sent, and every query of the Grafana dashboard must answer.
// promtool checks our /metrics output, the shipped configuration and the alert rules' unit tests.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { photo } from './helpers.js';
import { startServer, type ServerProcess } from './server-process.js';
import { requireTools } from './tools.js';

const tools = requireTools(['prometheus', 'promtool'], 'apt-get install prometheus');
const run = promisify(execFile);

const DEPLOY = fileURLToPath(new URL('../deploy/', import.meta.url));
const CLASSIFIER = 'mobilenet_v2_1.0_224';
const DETECTOR = 'ssdlite_mobilenet_v2_coco';
const JOB = 'mobilenet-serving';

interface Sample {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls until `probe` returns a value other than undefined. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Sample lines of the text format: name, labels and value. */
function parseExposition(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  return [...text.matchAll(/^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/gm)].map(([, name, labels, value]) => ({
    name: name!,
    labels: Object.fromEntries([...(labels ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!])),
    value: Number(value),
  }));
}

interface Bucket {
  le: number;
  count: number;
}

/** The cumulative buckets of one histogram series, read from the service's own /metrics. */
function bucketsOf(text: string, name: string, labels: Record<string, string>): Bucket[] {
  return parseExposition(text)
    .filter((s) => s.name === `${name}_bucket` && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value }))
    .sort((a, b) => a.le - b.le);
}

/** histogram_quantile's linear interpolation inside the bucket that holds the rank, written out. */
function interpolatedQuantile(q: number, buckets: Bucket[]): number {
  const total = buckets.at(-1)!.count;
  const rank = q * total;
  const i = buckets.findIndex((b) => b.count >= rank);
  if (buckets[i]!.le === Infinity) return buckets.at(-2)!.le;
  const lower = i === 0 ? 0 : buckets[i - 1]!.le;
  const below = i === 0 ? 0 : buckets[i - 1]!.count;
  return lower + ((buckets[i]!.le - lower) * (rank - below)) / (buckets[i]!.count - below);
}

/** The k-th smallest (1-based), the order statistic histogram_quantile's rank lands on. */
const kth = (values: number[], k: number) => [...values].sort((a, b) => a - b)[k - 1]!;

describe.skipIf(tools.skip)('Prometheus scraping the service', () => {
  let server: ServerProcess;
  let prometheus: ChildProcess;
  let prometheusLog = '';
  let prom: string;
  let workDir: string;
  let macs: Record<string, number>;
  let boundaries: number[];

  async function query(promql: string, time?: number): Promise<Sample[]> {
    const params = new URLSearchParams({ query: promql });
    if (time !== undefined) params.set('time', time.toFixed(3));
    const body = (await (await fetch(`${prom}/api/v1/query?${params}`)).json()) as { status: string; error?: string; data: { result: Sample[] } };
    if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`);
    return body.data.result;
  }

  const scalar = async (promql: string, time?: number) => {
    const result = await query(promql, time);
    return result.length === 1 ? Number(result[0]!.value![1]) : undefined;
  };

  const post = (route: string, image: Buffer) => fetch(`${server.base}${route}`, { method: 'POST', body: new Uint8Array(image) });

  beforeAll(async () => {
    server = await startServer({ MODELS: `${CLASSIFIER},${DETECTOR}`, POOL_SIZE: '1' });
    const models = (await (await fetch(`${server.base}/v1/models`)).json()) as { models: { name: string; multiplyAdds: number }[] };
    macs = Object.fromEntries(models.models.map((m) => [m.name, m.multiplyAdds]));

    // The shipped configuration, with its service discovery (Docker's DNS) replaced by this
    // test's service and a 1 s scrape interval; everything else as deployed.
    workDir = mkdtempSync(join(tmpdir(), 'prometheus-test-'));
    const shipped = parse(readFileSync(join(DEPLOY, 'prometheus/prometheus.yml'), 'utf8'));
    const { dns_sd_configs: _discovery, ...job } = shipped.scrape_configs.find((c: { job_name: string }) => c.job_name === JOB);
    const config = {
      ...shipped,
      global: { ...shipped.global, scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
      rule_files: shipped.rule_files.map((file: string) => join(DEPLOY, 'prometheus', file)),
      scrape_configs: [{ ...job, static_configs: [{ targets: [new URL(server.base).host] }] }],
    };
    writeFileSync(join(workDir, 'prometheus.yml'), stringify(config));
    const port = await freePort();
    prom = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      tools.paths.prometheus!,
      [`--config.file=${join(workDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(workDir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout!.on('data', (c: Buffer) => (prometheusLog += c.toString()));
    prometheus.stderr!.on('data', (c: Buffer) => (prometheusLog += c.toString()));
    prometheus.once('exit', (code) => (prometheusLog += `\n[prometheus exited with ${code}]`));
    await waitFor(`Prometheus to be ready: ${prometheusLog}`, async () => ((await fetch(`${prom}/-/ready`)).ok ? true : undefined));
    await waitFor('the target to be up', async () => ((await scalar(`up{job="${JOB}"}`)) === 1 ? true : undefined));

    // One request per route and model, and one refusal, so that every series exists before the
    // measured burst: a rate needs a sample on each side of it.
    expect((await post('/v1/classify', photo('parrot.jpg'))).status).toBe(200);
    expect((await post('/v1/detect', photo('pets.jpg'))).status).toBe(200);
    expect((await post('/v1/classify', Buffer.from('not an image'))).status).toBe(415);
    await waitFor('the warm-up to be scraped', async () =>
      (await scalar(`vision_multiply_adds_total{model="${DETECTOR}"}`)) === macs[DETECTOR] ? true : undefined,
    );
    boundaries = bucketsOf(await (await fetch(`${server.base}/metrics`)).text(), 'http_request_duration_seconds', { route: '/v1/classify' }).map((b) => b.le);
  }, 120_000);

  afterAll(async () => {
    prometheus?.kill('SIGTERM');
    server?.child.kill('SIGTERM');
    await server?.exited;
    if (prometheus && prometheus.exitCode === null) await new Promise((r) => prometheus.once('exit', r));
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('passes promtool check metrics on the /metrics output', async () => {
    const text = await (await fetch(`${server.base}/metrics`)).text();
    expect(text).toContain('vision_multiply_adds_total{');
    const child = spawn(tools.paths.promtool!, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.stdin.end(text);
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(out.trim(), 'promtool found problems').toBe('');
    expect(code).toBe(0);

    // And it does complain about a broken exposition (the check is not vacuous).
    const broken = spawn(tools.paths.promtool!, ['check', 'metrics'], { stdio: ['pipe', 'ignore', 'ignore'] });
    broken.stdin.end('# TYPE requests counter\nrequests 1\n');
    expect(await new Promise((resolve) => broken.once('exit', resolve))).not.toBe(0);
  });

  it('passes promtool check config on the shipped configuration, and the alert rules pass their unit tests', async () => {
    const dir = join(DEPLOY, 'prometheus');
    const checked = await run(tools.paths.promtool!, ['check', 'config', 'prometheus.yml'], { cwd: dir });
    expect(checked.stdout).toMatch(/SUCCESS: prometheus\.yml is valid/);
    expect(checked.stdout).toMatch(/SUCCESS: \d+ rules found/);
    const tested = await run(tools.paths.promtool!, ['test', 'rules', 'alerts.test.yml'], { cwd: dir });
    expect(tested.stdout).toMatch(/SUCCESS/);
  });

  it('computes a multiply-add rate and a latency quantile that match the requests sent', async () => {
    const CLASSIFY = 12;
    const DETECT = 4;
    const histogram = { route: '/v1/classify', status_code: '200' };
    const before = await (await fetch(`${server.base}/metrics`)).text();
    const burstStart = Date.now() / 1000;
    await sleep(50);

    const photos = ['parrot.jpg', 'grace_hopper.png', 'cat.png', 'burger.jpg'];
    const clientMs: number[] = [];
    const handlerMs: number[] = [];
    // Two at a time: a queue forms now and then, so latencies spread over a few buckets.
    for (let i = 0; i < CLASSIFY; i += 2) {
      await Promise.all(
        [i, i + 1].map(async (j) => {
          const started = performance.now();
          const response = await post('/v1/classify?topk=1', photo(photos[j % photos.length]!));
          const body = (await response.json()) as { timings: { totalMs: number } };
          clientMs.push(performance.now() - started);
          expect(response.status).toBe(200);
          handlerMs.push(body.timings.totalMs);
        }),
      );
    }
    for (let i = 0; i < DETECT; i++) expect((await post('/v1/detect', photo('pets.jpg'))).status).toBe(200);

    // The histogram is observed when a response has gone out: read until all of them are counted.
    const countOf = (text: string) => bucketsOf(text, 'http_request_duration_seconds', histogram).at(-1)?.count ?? 0;
    const after = await waitFor('the last observation', async () => {
      const text = await (await fetch(`${server.base}/metrics`)).text();
      return countOf(text) === countOf(before) + CLASSIFY ? text : undefined;
    });
    await sleep(50);
    const burstEnd = Date.now() / 1000;

    // The scrapes on either side of the burst, as Prometheus stored them.
    const series = `vision_multiply_adds_total{model="${CLASSIFIER}"}`;
    const samples = await waitFor('a scrape after the burst', async () => {
      const [matrix] = await query(`${series}[5m]`);
      const values = (matrix?.values ?? []).map(([t, v]) => ({ t, v: Number(v) }));
      return values.some((s) => s.t > burstEnd) ? values : undefined;
    });
    const first = samples.filter((s) => s.t < burstStart).at(-1)!;
    const last = samples.find((s) => s.t > burstEnd)!;
    expect(first.v).toBe(macs[CLASSIFIER]); // the warm-up request only
    expect(last.v - first.v).toBe(CLASSIFY * macs[CLASSIFIER]!);

    // rate() over the window from `first` to `last`, evaluated at `last`: with a sample on each
    // edge Prometheus extrapolates nothing, so every rate is exactly delta / (last - first).
    // (Prometheus 2 selects [t - w, t]; the check below fails loudly if `first` fell outside.)
    const span = last.t - first.t;
    const window = `${Math.round(span * 1000)}ms`;
    const [selected] = await query(`${series}[${window}]`, last.t);
    expect(selected!.values![0]![0], 'the window starts at the sample before the burst').toBe(first.t);
    const rates = await query(`sum by (model) (rate(vision_multiply_adds_total[${window}]))`, last.t);
    const rateOf = (model: string) => Number(rates.find((r) => r.metric.model === model)!.value![1]);
    expect(rateOf(CLASSIFIER) * span).toBeCloseTo(CLASSIFY * macs[CLASSIFIER]!, -1);
    expect(rateOf(DETECTOR) * span).toBeCloseTo(DETECT * macs[DETECTOR]!, -1);
    expect(rateOf(CLASSIFIER) / (CLASSIFY * macs[CLASSIFIER]! / span)).toBeCloseTo(1, 9);
    const selector = `{route="/v1/classify",status_code="200"}`;
    expect((await scalar(`sum(rate(http_request_duration_seconds_count${selector}[${window}]))`, last.t))! * span).toBeCloseTo(CLASSIFY, 6);

    // The median of the burst's latencies: Prometheus's estimate equals the same interpolation
    // done here on the bucket counts read from the service before and after...
    const p50 = (await scalar(`histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket${selector}[${window}])))`, last.t))!;
    const delta = bucketsOf(after, 'http_request_duration_seconds', histogram).map((b, i) => ({
      le: b.le,
      count: b.count - (bucketsOf(before, 'http_request_duration_seconds', histogram)[i]?.count ?? 0),
    }));
    expect(p50).toBeCloseTo(interpolatedQuantile(0.5, delta), 9);
    // ...and lies in the buckets the measured latencies allow: each request's server time is at
    // least its handler time and at most what the client waited, so the k-th smallest server time
    // (k = rank of the median) lies between the k-th handler time and the k-th client time.
    const k = Math.ceil(0.5 * CLASSIFY);
    const floor = Math.max(0, ...boundaries.filter((le) => le < kth(handlerMs, k) / 1000));
    const ceiling = Math.min(...boundaries.filter((le) => le >= kth(clientMs, k) / 1000));
    expect(p50).toBeGreaterThanOrEqual(floor);
    expect(p50).toBeLessThanOrEqual(ceiling);

    // Every query of the Grafana dashboard answers with data, and its multiply-add panel shows
    // the same rates.
    const dashboard = JSON.parse(readFileSync(join(DEPLOY, 'grafana/dashboards/mobilenet-serving.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        const result = await query(expr.replaceAll('$__rate_interval', window), last.t);
        expect(result.length, `${panel.title}: ${expr}`).toBeGreaterThan(0);
        if (panel.title === 'Multiply-adds per second by model') {
          for (const r of result) expect(Number(r.value![1]), r.metric.model).toBeCloseTo(rateOf(r.metric.model!), 3);
        }
      }
    }
  }, 90_000);
});
