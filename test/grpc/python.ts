// A Python with grpcio, grpcio-tools and protobuf (from the machine's wheel mirror), in a venv
// cached under node_modules/.cache so a machine pays for it once; and a client generated from
// the protocol's official .proto with grpc_tools.protoc, into a temporary folder.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VENV = join(ROOT, 'node_modules/.cache/grpc-python');
export const OFFICIAL_PROTO = fileURLToPath(new URL('../../../shared/protocols/kserve_grpc_predict_v2.proto', import.meta.url));
const PACKAGES = ['grpcio', 'grpcio-tools', 'protobuf'];

/** The venv's python, made (or completed) on first use. */
export async function grpcPython(): Promise<string> {
  const python = join(VENV, 'bin/python');
  const ready = join(VENV, '.installed');
  if (!existsSync(ready)) {
    await run('python3', ['-m', 'venv', VENV]);
    await run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...PACKAGES], { timeout: 600_000 });
    await run('touch', [ready]);
  }
  return python;
}

/** Generates the Python client (kserve_grpc_predict_v2_pb2*.py) from the official .proto; returns its folder. */
export async function generateClient(python: string): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), 'kserve-client-'));
  const protoDir = join(OFFICIAL_PROTO, '..');
  await run(python, ['-m', 'grpc_tools.protoc', `-I${protoDir}`, `--python_out=${out}`, `--grpc_python_out=${out}`, OFFICIAL_PROTO]);
  return out;
}
