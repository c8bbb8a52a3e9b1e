// A model repository on disk, laid out as TF Serving and Triton lay theirs: a folder per model,
// a numbered folder per version holding its config file and (usually) its weights, and an
// optional model.yaml / model.json beside the versions that pins one:
//
//   <repository>/<model>/model.yaml        optional: { version: 2, default: true }
//   <repository>/<model>/<version>/config.yaml (or .yml, .json)
//
// The newest version is served unless one is pinned; `default` makes a model its task's default.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelRef } from '../tasks.js';
import { ModelConfigError, readYamlOrJson } from './config.js';

const CONFIG_FILES = ['config.yaml', 'config.yml', 'config.json'];
const MODEL_FILES = ['model.yaml', 'model.yml', 'model.json'];
/** A model name is a URL path segment and a metric label: no slashes, no spaces. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface RepositoryModel {
  name: string;
  dir: string;
  /** Version numbers with a config file, ascending. */
  versions: number[];
  /** The version model.yaml pins, if any. */
  pinned?: number;
  /** model.yaml says it is its task's default model (the one a request that names none gets). */
  isDefault: boolean;
  configFile(version: number): string;
}

function firstExisting(dir: string, names: readonly string[]): string | undefined {
  return names.map((n) => join(dir, n)).find((p) => existsSync(p));
}

function modelSettings(dir: string): { version?: number; default?: boolean } {
  const file = firstExisting(dir, MODEL_FILES);
  if (!file) return {};
  const parsed = readYamlOrJson(file);
  const fields = parsed && typeof parsed === 'object' ? Object.keys(parsed) : [];
  const { version, default: isDefault } = (parsed ?? {}) as { version?: unknown; default?: unknown };
  if (fields.some((f) => f !== 'version' && f !== 'default') || (version !== undefined && !(Number.isInteger(version) && (version as number) > 0)) ||
    (isDefault !== undefined && typeof isDefault !== 'boolean')) {
    throw new ModelConfigError(`${file}: valid fields are version (a positive integer) and default (true or false); found ${JSON.stringify(parsed)}`);
  }
  return { version: version as number | undefined, default: isDefault as boolean | undefined };
}

/** The models of a repository, with their versions; folders that are not models are skipped. */
export function listRepository(root: string): RepositoryModel[] {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new ModelConfigError(`model repository ${root} is not a folder`);
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && MODEL_NAME.test(e.name))
    .map((e) => {
      const dir = join(root, e.name);
      const configFile = (version: number) => {
        const file = firstExisting(join(dir, String(version)), CONFIG_FILES);
        if (!file) throw new ModelConfigError(`${join(dir, String(version))}: no ${CONFIG_FILES.join(', ')}`);
        return file;
      };
      const versions = readdirSync(dir, { withFileTypes: true })
        .filter((v) => v.isDirectory() && /^[1-9]\d*$/.test(v.name) && firstExisting(join(dir, v.name), CONFIG_FILES))
        .map((v) => Number(v.name))
        .sort((a, b) => a - b);
      const settings = modelSettings(dir);
      return { name: e.name, dir, versions, pinned: settings.version, isDefault: settings.default ?? false, configFile };
    })
    .filter((m) => m.versions.length > 0 || m.pinned !== undefined)
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The version to serve: the pinned one, else the newest; undefined when a pin names a missing version. */
export function servedVersion(model: RepositoryModel): number | undefined {
  if (model.pinned !== undefined) return model.versions.includes(model.pinned) ? model.pinned : undefined;
  return model.versions.at(-1);
}
