// External programs some tests drive for real (Prometheus, promtool, Chromium, docker-compose,
// nginx). Without them a test is skipped with a message saying what to install; .ci/run installs
// them and sets REQUIRE_TOOLS=1, which turns a missing program into a failure, so CI cannot go
// green by skipping.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The absolute path of an executable on PATH (or the path itself if it is absolute), else undefined. */
export function findTool(name: string): string | undefined {
  const candidates = name.includes('/') ? [name] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export interface Tools {
  /** Absolute paths by the names asked for; only complete when `missing` is empty. */
  paths: Record<string, string>;
  missing: string[];
  /** For describe.skipIf / it.skipIf. */
  skip: boolean;
}

/**
 * Looks the programs up. Missing ones: a warning and `skip`, or, under REQUIRE_TOOLS=1, an error
 * thrown while the test file loads, which fails the run.
 */
export function requireTools(names: string[], install: string): Tools {
  const paths: Record<string, string> = {};
  const missing: string[] = [];
  for (const name of names) {
    const path = findTool(name);
    if (path) paths[name] = path;
    else missing.push(name);
  }
  if (missing.length > 0) {
    const message = `${missing.join(', ')} not found on PATH (${install})`;
    if (process.env.REQUIRE_TOOLS === '1') throw new Error(`REQUIRE_TOOLS=1 and ${message}`);
    console.warn(`SKIPPED: ${message}; these tests do not run here`);
  }
  return { paths, missing, skip: missing.length > 0 };
}
