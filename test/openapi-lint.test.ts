// openapi.yaml through Redocly CLI's linter with the checked-in redocly.yaml: no errors, and
// warnings only where redocly.yaml explains why they stay.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'node_modules/@redocly/cli/bin/cli.js');
/** The pointers of the warnings redocly.yaml accepts, by rule. */
const ACCEPTED: Record<string, RegExp> = {
  'operation-4xx-response': /^#\/paths\/~1(v1~1models|healthz|readyz|metrics|v2~1health~1live|v2)\/get\/responses$/,
  'no-unused-components': /^#\/components\/responses\/NotFound$/,
};

interface LintReport {
  totals: { errors: number; warnings: number };
  problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
}

async function lint(file: string, config = join(ROOT, 'redocly.yaml')): Promise<LintReport> {
  // No telemetry and no update check: the linter runs offline.
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };
  const args = [CLI, 'lint', file, `--config=${config}`, '--format=json'];
  try {
    return JSON.parse((await run(process.execPath, args, { cwd: ROOT, env })).stdout) as LintReport;
  } catch (err) {
    // Exit code 1 when there are errors; the report is still on stdout.
    const stdout = (err as { stdout?: string }).stdout;
    if (!stdout) throw err;
    return JSON.parse(stdout) as LintReport;
  }
}

describe('Redocly lint of openapi.yaml', () => {
  it('finds no errors, and only the warnings redocly.yaml accepts', async () => {
    const report = await lint('openapi.yaml');
    const errors = report.problems.filter((p) => p.severity === 'error');
    expect(errors.map((p) => `${p.ruleId} ${p.location[0]?.pointer}: ${p.message}`)).toEqual([]);
    expect(report.totals.errors).toBe(0);
    for (const p of report.problems) {
      const pointer = p.location[0]?.pointer ?? '';
      expect(ACCEPTED[p.ruleId]?.test(pointer), `unexpected ${p.severity} ${p.ruleId} at ${pointer}: ${p.message}`).toBe(true);
    }
  });

  it('reports errors in a broken copy (the lint is not vacuous)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lint-'));
    try {
      const broken = readFileSync(join(ROOT, 'openapi.yaml'), 'utf8')
        .replace("$ref: '#/components/schemas/ClassifyResponse'", "$ref: '#/components/schemas/NoSuchSchema'")
        .replace(/^security: \[\]\n/m, '');
      writeFileSync(join(dir, 'openapi.yaml'), broken);
      const report = await lint(join(dir, 'openapi.yaml'));
      const rules = report.problems.filter((p) => p.severity === 'error').map((p) => p.ruleId);
      expect(rules).toContain('no-unresolved-refs');
      expect(rules).toContain('security-defined');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
