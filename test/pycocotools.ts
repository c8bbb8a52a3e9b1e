// pycocotools, the field's reference for COCO metrics, run in a Python venv the test makes once
// and keeps under node_modules/.cache (pip installs it from this machine's wheel mirror).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluateDetections, type CocoDataset, type CocoResult } from '../src/eval/coco.js';

const VENV = fileURLToPath(new URL('../node_modules/.cache/pycocotools-venv/', import.meta.url));
const PYTHON = join(VENV, 'bin', 'python');

/** The venv's python, after creating it and installing pycocotools the first time. */
export function pycocotoolsPython(): string {
  if (!existsSync(join(VENV, '.installed'))) {
    rmSync(VENV, { recursive: true, force: true });
    execFileSync('python3', ['-m', 'venv', VENV], { stdio: 'inherit' });
    execFileSync(PYTHON, ['-m', 'pip', 'install', '--quiet', '--retries', '0', 'pycocotools', 'numpy'], { stdio: 'inherit' });
    writeFileSync(join(VENV, '.installed'), '');
  }
  return PYTHON;
}

// COCOeval's twelve stats and AP@[.5:.95] of each category (-1 where it has no ground truth).
const SCRIPT = `
import json, sys, io, contextlib
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(sys.argv[1])
    dt = gt.loadRes(sys.argv[2])
    e = COCOeval(gt, dt, 'bbox')
    e.evaluate(); e.accumulate(); e.summarize()
p = e.eval['precision'][:, :, :, 0, 2]
per = [float(np.mean(p[:, :, k][p[:, :, k] > -1])) if (p[:, :, k] > -1).any() else -1.0 for k in range(p.shape[2])]
print(json.dumps({'stats': [float(s) for s in e.stats], 'perCategory': {str(int(c)): v for c, v in zip(e.params.catIds, per)}}))
`;

export interface PycocotoolsAnswer {
  stats: number[];
  perCategory: Record<string, number>;
}

/** COCOeval on the dataset and results (pycocotools cannot load an empty result list). */
export function pycocotoolsEval(dataset: CocoDataset, results: CocoResult[]): PycocotoolsAnswer {
  const dir = mkdtempSync(join(tmpdir(), 'cocoeval-'));
  try {
    const [gt, dt, script] = [join(dir, 'gt.json'), join(dir, 'dt.json'), join(dir, 'eval.py')];
    writeFileSync(gt, JSON.stringify({ info: {}, licenses: [], ...dataset }));
    writeFileSync(dt, JSON.stringify(results));
    writeFileSync(script, SCRIPT);
    return JSON.parse(execFileSync(pycocotoolsPython(), [script, gt, dt], { encoding: 'utf8' })) as PycocotoolsAnswer;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const STAT_NAMES = ['ap', 'ap50', 'ap75', 'apSmall', 'apMedium', 'apLarge', 'ar1', 'ar10', 'ar100', 'arSmall', 'arMedium', 'arLarge'] as const;

/** Largest difference between our metrics and pycocotools' on the same input, stats and per-category AP. */
export function differenceFromPycocotools(dataset: CocoDataset, results: CocoResult[]): { worst: number; ours: ReturnType<typeof evaluateDetections>; theirs: number[] } {
  const ours = evaluateDetections(dataset, results);
  const theirs = pycocotoolsEval(dataset, results);
  let worst = Math.max(...STAT_NAMES.map((name, i) => Math.abs(ours[name] - theirs.stats[i]!)));
  for (const c of ours.perCategory) worst = Math.max(worst, Math.abs(c.ap - theirs.perCategory[String(c.id)]!));
  return { worst, ours, theirs: theirs.stats };
}
