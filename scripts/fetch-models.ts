// Installs the pretrained files listed in models/manifest.json (see scripts/model-files.ts).
//
//   npx tsx scripts/fetch-models.ts [path-prefix ...]
//
// MODEL_DIR     destination (default: <project>/models/files)
// MODEL_MIRROR  local directory laid out like the destination; when set, nothing is downloaded
// Relative env paths resolve against the current directory, as a shell user would expect.

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installModels, loadManifest, ModelInstallError, type InstallResult } from './model-files.js';

const projectRoot = fileURLToPath(new URL('..', import.meta.url));

function envPath(name: string): string | undefined {
  const value = process.env[name];
  // An empty variable (e.g. `MODEL_MIRROR= npm run ...`) means "not configured".
  return value ? resolve(value) : undefined;
}

function formatSize(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} kB`;
}

async function main(): Promise<number> {
  const prefixes = process.argv.slice(2);
  const option = prefixes.find((a) => a.startsWith('-'));
  if (option !== undefined) {
    console.error(`fetch-models: unknown option ${option}\nusage: tsx scripts/fetch-models.ts [path-prefix ...]`);
    return 2;
  }

  const destDir = envPath('MODEL_DIR') ?? resolve(projectRoot, 'models', 'files');
  const mirrorDir = envPath('MODEL_MIRROR');
  const manifest = await loadManifest(resolve(projectRoot, 'models', 'manifest.json'));

  console.log(`fetch-models: into ${destDir} from ${mirrorDir ? `mirror ${mirrorDir}` : 'official sources'}`);
  const line = (r: InstallResult) =>
    console.log(`  ${r.action.padEnd(10)} ${r.path} (${r.action === 'skipped' ? 'only in a mirror: set MODEL_MIRROR' : formatSize(r.size)})`);
  try {
    await installModels(manifest, {
      destDir,
      mirrorDir,
      prefixes,
      onResult: line,
      onFailure: (f) => console.error(`  FAILED     ${f.path}: ${f.message}`),
    });
  } catch (err) {
    if (err instanceof ModelInstallError) {
      console.error(`fetch-models: ${err.failures.length} file(s) failed; nothing invalid was left in ${destDir}`);
      return 1;
    }
    throw err;
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`fetch-models: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
