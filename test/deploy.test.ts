// The deployment files, checked with the real validators this machine has (no Docker engine):
// docker-compose's own schema and interpolation (`docker-compose config`), nginx's parser
// (`nginx -t`), the Kubernetes API schemas (kubernetes-models), and the cross-references
// between the files: ports, paths, probes, service names, data source uids.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Service } from 'kubernetes-models/v1';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { requireTools } from './tools.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const run = promisify(execFile);
const DEFAULTS = loadConfig({});
/** The environment variables src/config.ts reads. */
const CONFIG_VARS = new Set([...read('src/config.ts').matchAll(/\benv\.([A-Z][A-Z0-9_]*)|\(env, '([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1] ?? m[2]!));

const composeTool = requireTools(['docker-compose'], 'apt-get install docker-compose');
const nginxTool = requireTools(['nginx'], 'apt-get install nginx-light');

interface ComposeService {
  image?: string;
  build?: { context: string; args?: Record<string, string>; additional_contexts?: Record<string, string> };
  ports?: ({ host_ip?: string; published: number | string; target: number } | string)[];
  expose?: string[];
  volumes?: (string | { source: string; target: string })[];
  environment?: Record<string, string>;
  container_name?: string;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

/** The Prometheus job that scrapes the service, from the shipped configuration. */
function scrapeJob() {
  const config = parse(read('deploy/prometheus/prometheus.yml'));
  return config.scrape_configs.find((c: { job_name: string }) => c.job_name === 'mobilenet-serving') as {
    metrics_path: string;
    dns_sd_configs: { names: string[]; type: string; port: number }[];
  };
}

/** A service's published ports and bind mounts, whichever form `config` writes them in (Compose v1: numbers and "source:target" strings; v2: strings and objects). */
const portsOf = (service: ComposeService) => (service.ports ?? []).map((p) => {
  if (typeof p !== 'string') return { host_ip: p.host_ip, published: Number(p.published), target: Number(p.target) };
  const [target, published, host] = (p as string).replace(/\/tcp$/, '').split(':').reverse();
  return { host_ip: host, published: Number(published), target: Number(target) };
});
const mountsOf = (service: ComposeService) => (service.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':').slice(0, 2) : [v.source, v.target]) as [string, string]);

describe.skipIf(composeTool.skip)('docker-compose.yml', () => {
  /**
   * The file as docker-compose resolves it. Compose 1 prints volumes as 'source:target', Compose
   * 2 as objects: both become the short form (ports are read in either form by portsOf).
   */
  const normalized = async (file: string, env: Record<string, string> = {}) => {
    const { stdout } = await run(composeTool.paths['docker-compose']!, ['-f', file, 'config'], { cwd: ROOT, env: { ...process.env, ...env } });
    const { services } = parse(stdout) as { services: Record<string, Record<string, unknown>> };
    type LongVolume = { source: string; target: string; read_only?: boolean };
    for (const service of Object.values(services)) {
      if (Array.isArray(service.volumes)) {
        service.volumes = (service.volumes as (string | LongVolume)[]).map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}${v.read_only ? ':ro' : ''}`));
      }
    }
    return { services: services as Record<string, ComposeService> };
  };

  it('is valid for docker-compose, which refuses a misspelt key', async () => {
    const { services } = await normalized('docker-compose.yml');
    expect(Object.keys(services).sort()).toEqual(['app', 'grafana', 'lb', 'prometheus']);
    const dir = mkdtempSync(join(tmpdir(), 'compose-'));
    try {
      writeFileSync(join(dir, 'docker-compose.yml'), read('docker-compose.yml').replace('stop_grace_period:', 'stop_grace_periods:'));
      await expect(normalized(join(dir, 'docker-compose.yml'))).rejects.toThrow(/stop_grace_periods/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('can scale the service behind the balancer, and scrapes every replica', async () => {
    const { services } = await normalized('docker-compose.yml');
    const app = services.app!;
    // --scale needs a service without a fixed host port or container name.
    expect(app.ports ?? []).toEqual([]);
    expect(app.container_name).toBeUndefined();
    expect(app.expose).toContain(String(DEFAULTS.port));
    expect(app.build?.context).toBe(ROOT.replace(/\/$/, ''));
    // The balancer publishes the service's address, on this machine only by default, and starts
    // once a replica is healthy.
    expect(portsOf(services.lb!)).toEqual([{ host_ip: '127.0.0.1', published: DEFAULTS.port, target: DEFAULTS.port }]);
    expect(services.lb!.depends_on?.app?.condition).toBe('service_healthy');
    // Healthy means ready: the balancer waits for a replica that has loaded its models.
    expect(app.healthcheck?.test.join(' ')).toMatch(/\/readyz/);
    const job = scrapeJob();
    expect(job.metrics_path).toBe('/metrics');
    expect(job.dns_sd_configs).toEqual([expect.objectContaining({ names: ['app'], type: 'A', port: DEFAULTS.port })]);
    // Every environment variable set is one the service reads.
    for (const name of Object.keys(app.environment ?? {})) expect(CONFIG_VARS, name).toContain(name);
  });

  it('takes the images, the model mirror and the published address from the environment, with today\'s defaults', async () => {
    const defaults = await normalized('docker-compose.yml');
    expect(Object.fromEntries(['lb', 'prometheus', 'grafana'].map((s) => [s, defaults.services[s]!.image]))).toEqual({
      lb: 'nginx:1.27-alpine', prometheus: 'prom/prometheus:v2.55.1', grafana: 'grafana/grafana:11.4.0',
    });
    const build = defaults.services.app!.build!;
    expect(build.args?.NODE_IMAGE).toBe('node:20-bookworm-slim');
    // The default mirror holds no models/ folder: the build downloads the files.
    expect(existsSync(join(build.additional_contexts!['model-mirror']!, 'models'))).toBe(false);
    for (const service of Object.values(defaults.services)) for (const port of portsOf(service)) expect(port.host_ip).toBe('127.0.0.1');

    const env = { NODE_IMAGE: 'local/node:20', NGINX_IMAGE: 'local/nginx', PROMETHEUS_IMAGE: 'local/prometheus', GRAFANA_IMAGE: 'local/grafana', MIRROR_DIR: '/srv/mirror', BIND_ADDRESS: '0.0.0.0', LB_PORT: '18080' };
    const { services } = await normalized('docker-compose.yml', env);
    const custom = services.app!.build!;
    expect([custom.args?.NODE_IMAGE, custom.additional_contexts?.['model-mirror']]).toEqual(['local/node:20', '/srv/mirror']);
    expect([services.lb!.image, services.prometheus!.image, services.grafana!.image]).toEqual(['local/nginx', 'local/prometheus', 'local/grafana']);
    expect(portsOf(services.lb!)).toEqual([{ host_ip: '0.0.0.0', published: 18080, target: DEFAULTS.port }]);
  });

  it('mounts files that exist where the images read them', async () => {
    const { services } = await normalized('docker-compose.yml');
    const mounts = Object.values(services).flatMap((s) => mountsOf(s).filter(([source]) => source.startsWith('/')));
    expect(mounts.length).toBeGreaterThanOrEqual(4);
    for (const [source] of mounts) expect(existsSync(source!), source).toBe(true);
    const target = (service: string, source: string) => mountsOf(services[service]!).find(([from]) => from.startsWith(join(ROOT, source)))?.[1];
    expect(target('lb', 'deploy/nginx/nginx.conf')).toBe('/etc/nginx/nginx.conf');
    expect(target('prometheus', 'deploy/prometheus')).toBe('/etc/prometheus');
    expect(target('grafana', 'deploy/grafana/provisioning')).toBe('/etc/grafana/provisioning');
    // The dashboard provider reads the folder the dashboards are mounted at.
    const provider = parse(read('deploy/grafana/provisioning/dashboards/dashboards.yml')).providers[0];
    expect(target('grafana', 'deploy/grafana/dashboards')).toBe(provider.options.path);
    expect(services.grafana!.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(`${provider.options.path}/mobilenet-serving.json`);
  });
});

describe.skipIf(nginxTool.skip)('deploy/nginx/nginx.conf', () => {
  it('passes nginx -t and balances over the compose service', async () => {
    const { stderr } = await run(nginxTool.paths.nginx!, ['-t', '-c', join(ROOT, 'deploy/nginx/nginx.conf')]);
    expect(stderr).toMatch(/syntax is ok/);
    const conf = read('deploy/nginx/nginx.conf');
    expect(conf).toMatch(new RegExp(`set \\$service http://app:${DEFAULTS.port};`));
    expect(conf).toMatch(new RegExp(`listen ${DEFAULTS.port};`));
    // Large enough for the service's own 413 to answer, not nginx's.
    const [, megabytes] = /client_max_body_size (\d+)m;/.exec(conf)!;
    expect(Number(megabytes) * 1024 * 1024).toBeGreaterThan(DEFAULTS.bodyLimitBytes);
    // And nginx -t does reject a broken file.
    const dir = mkdtempSync(join(tmpdir(), 'nginx-'));
    try {
      writeFileSync(join(dir, 'nginx.conf'), conf.replace('proxy_read_timeout 75s;', 'proxy_read_timeout;'));
      await expect(run(nginxTool.paths.nginx!, ['-t', '-c', join(dir, 'nginx.conf')])).rejects.toThrow(/invalid number of arguments/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/k8s', () => {
  const documents = readdirSync(join(ROOT, 'deploy/k8s'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseAllDocuments(read(`deploy/k8s/${f}`)).map((d) => d.toJS() as { kind: string; metadata: { name: string } }));
  const MODELS = { Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget } as const;
  const byKind = <K extends keyof typeof MODELS>(kind: K) => documents.find((d) => d.kind === kind) as unknown as InstanceType<(typeof MODELS)[K]>;

  it('validates every object against the Kubernetes API schema', () => {
    expect(documents.map((d) => d.kind).sort()).toEqual(['Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Service']);
    for (const doc of documents) {
      const Model = MODELS[doc.kind as keyof typeof MODELS];
      expect(() => new Model(doc as never).validate(), `${doc.kind} ${doc.metadata.name}`).not.toThrow();
    }
    // The schema check is real: a port given as a word is refused.
    const broken = structuredClone(byKind('Deployment')) as unknown as { spec: { template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } } };
    broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = 'eighty';
    expect(() => new Deployment(broken as never).validate()).toThrow(/containerPort/);
  });

  it('probes readiness on /readyz and liveness on /healthz, and ties the objects together', () => {
    const deployment = byKind('Deployment');
    const pod = deployment.spec!.template.spec!;
    const container = pod.containers[0]!;
    const http = container.ports!.find((p) => p.name === 'http')!;
    expect(http.containerPort).toBe(DEFAULTS.port);
    expect(container.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe!.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.startupProbe!.httpGet!.path).toBe('/healthz');
    // SIGKILL only after the service's own drain (DRAIN_TIMEOUT_MS) has had its time.
    expect(pod.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(DEFAULTS.drainTimeoutMs);
    expect(pod.securityContext!.runAsNonRoot).toBe(true);
    const labels = deployment.spec!.template.metadata!.labels!;
    const service = byKind('Service');
    for (const [k, v] of Object.entries(service.spec!.selector!)) expect(labels[k]).toBe(v);
    expect(service.spec!.ports![0]!.targetPort).toBe('http');
    const hpa = byKind('HorizontalPodAutoscaler');
    expect(hpa.spec!.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata!.name });
    expect(hpa.spec!.minReplicas).toBeGreaterThanOrEqual(2);
    for (const [k, v] of Object.entries(byKind('PodDisruptionBudget').spec!.selector!.matchLabels!)) expect(labels[k]).toBe(v);
    // Every environment variable set is one the service reads.
    for (const { name } of container.env ?? []) expect(CONFIG_VARS, name).toContain(name);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const runtime = stages.at(-1)!;
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  /** .dockerignore's patterns as Docker reads them: from the context root, `**` any folders, `*` within a name. */
  const patternRegex = (pattern: string) => {
    const parts = pattern.split('/').map((part) => (part === '**' ? '(?:.*/)?' : `${part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}/`));
    return new RegExp(`^${parts.join('').replace(/\/$/, '')}(?:/.*)?$`);
  };
  const isIgnored = (path: string) => ignored.some((pattern) => patternRegex(pattern).test(path));

  it('copies from the build context only files that exist and .dockerignore lets through', () => {
    const copies = [...dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)].map((m) => m[1]!.trim().split(/\s+/).slice(0, -1));
    expect(copies.length).toBeGreaterThan(3);
    for (const sources of copies) {
      for (const source of sources) {
        expect(existsSync(join(ROOT, source)), source).toBe(true);
        expect(isIgnored(source.replace(/\/$/, '')), `${source} is excluded by .dockerignore`).toBe(false);
      }
    }
    // What must stay out of the image's context stays out.
    for (const path of ['node_modules', 'models/files', '.git', 'test', 'tools/openapi-codegen/node_modules']) expect(isIgnored(path), path).toBe(true);
    expect(isIgnored('src/server.ts')).toBe(false);
  });

  it('runs as a non-root user with a health check on /healthz, the way npm start does', () => {
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^HEALTHCHECK [^]*\/healthz/m);
    expect(runtime).toMatch(new RegExp(`^EXPOSE ${DEFAULTS.port}$`, 'm'));
    expect(runtime).toMatch(/fonts-dejavu-core/);
    // npm start is `NAME=${NAME:-default} ... exec command` (exec: npm's signals reach the server
    // itself): the image runs the same command with the same defaults.
    const start = JSON.parse(read('package.json')).scripts.start as string;
    const assignments = [...start.matchAll(/(\w+)=\$\{\1:-([^}]*)\} /g)];
    expect(assignments.map(([, name]) => name)).toEqual(['MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_']);
    for (const [, name, value] of assignments) expect(runtime).toMatch(new RegExp(`^\\s+${name}=${value}( \\\\)?$`, 'm'));
    const [, cmd] = /^CMD (\[.*\])$/m.exec(runtime)!;
    expect(start).toMatch(/^(\w+=\S+ )+exec /);
    expect((JSON.parse(cmd!) as string[]).join(' ')).toBe(start.replace(/^(\w+=\S+ )+exec /, ''));
    // Models are fetched and verified by the project's own install step.
    expect(stages.find((s) => s.startsWith('${NODE_IMAGE} AS build'))).toMatch(/npm run models/);
  });
});

describe('Grafana provisioning', () => {
  const dashboard = JSON.parse(read('deploy/grafana/dashboards/mobilenet-serving.json')) as {
    uid: string;
    panels: { id: number; title: string; datasource: { uid: string }; targets: { expr: string; datasource: { uid: string } }[] }[];
  };
  const datasource = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')).datasources[0];

  it('uses the provisioned data source, which points at the compose Prometheus', () => {
    expect(datasource.type).toBe('prometheus');
    expect(datasource.url).toBe('http://prometheus:9090');
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) {
      expect(panel.datasource.uid, panel.title).toBe(datasource.uid);
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets) expect(target.datasource.uid, panel.title).toBe(datasource.uid);
    }
  });

  it('shows request rate and latency per route, multiply-adds per model, queue depth, rejections and worker restarts', () => {
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    const has = (pattern: RegExp) => expect(exprs.some((e) => pattern.test(e)), String(pattern)).toBe(true);
    has(/sum by \(route\) \(rate\(http_request_duration_seconds_count/);
    for (const q of ['0.5', '0.9', '0.99']) has(new RegExp(`histogram_quantile\\(${q}, sum by \\(route, le\\) \\(rate\\(http_request_duration_seconds_bucket`));
    has(/sum by \(model\) \(rate\(vision_multiply_adds_total/);
    has(/vision_queue_depth/);
    has(/sum by \(code\) \(rate\(vision_errors_total/);
    has(/vision_worker_restarts_total/);
  });
});

describe('README', () => {
  it('documents every environment variable src/config.ts reads, with a default', () => {
    const section = read('README.md').split(/^## Configuration$/m)[1]!.split(/^## /m)[0]!;
    const rows = new Map([...section.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| ([^|]+) \|/gm)].map((m) => [m[1]!, m[2]!.trim()]));
    expect(CONFIG_VARS.size).toBeGreaterThan(10);
    for (const name of CONFIG_VARS) {
      expect(rows.has(name), `${name} is not in the README's configuration table`).toBe(true);
      expect(rows.get(name), name).not.toBe('');
    }
  });
});
