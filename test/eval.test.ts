// npm run eval end to end: the datasets it reads, our detections of the shared COCO photos scored
// by our COCO metrics and by pycocotools, and the command itself, in-process and against a server.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { classColour } from '../src/render/segmentation.js';
import { DETECTION_EVAL_SETTINGS, evalDetection, inProcessTarget, readClassFolders, readCocoDataset, readLabelMask, readLabelsFile } from '../scripts/eval-run.js';
import { differenceFromPycocotools } from './pycocotools.js';
import { startServer } from './server-process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EVAL = fileURLToPath(new URL('../../shared/eval/', import.meta.url));
const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'eval-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** `npm run eval -- args`, as a child process; its stdout, stderr and written files. */
async function evalCommand(args: string[], out: string) {
  const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'scripts/eval.ts', ...args, '--out', out], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn' } });
  return { stdout, stderr, results: JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')), report: readFileSync(join(out, 'report.md'), 'utf8') };
}

describe('datasets', () => {
  it('reads a labels file with a header and a chosen column, or without one', () => {
    const dir = join(scratch, 'labels');
    mkdirSync(dir);
    writeFileSync(join(dir, 'with-header.tsv'), 'file\tclass_index_1000\tclass_index_1001\na.jpg\t0\t1\nsub/b.jpg\t999\t1000\n');
    expect(readLabelsFile(join(dir, 'with-header.tsv'), { column: 'class_index_1001' })).toEqual([
      { path: join(dir, 'a.jpg'), label: 1 },
      { path: join(dir, 'sub/b.jpg'), label: 1000 },
    ]);
    expect(readLabelsFile(join(dir, 'with-header.tsv')).map((i) => i.label)).toEqual([0, 999]);
    writeFileSync(join(dir, 'plain.tsv'), 'a.jpg\t7\n');
    expect(readLabelsFile(join(dir, 'plain.tsv'), { imagesDir: '/photos' })).toEqual([{ path: '/photos/a.jpg', label: 7 }]);
    expect(() => readLabelsFile(join(dir, 'with-header.tsv'), { column: 'wnid' })).toThrow(/no column 'wnid'/);
    writeFileSync(join(dir, 'bad.tsv'), 'a.jpg\t7\nb.jpg\tcat\n');
    expect(() => readLabelsFile(join(dir, 'bad.tsv'))).toThrow(/line 2: class 'cat'/);
  });

  it('reads class folders in ImageNet\'s order (sorted WordNet ids), or by a synsets file, or by number', () => {
    const dir = join(scratch, 'folders');
    for (const folder of ['n02', 'n01', 'n03']) {
      mkdirSync(join(dir, folder), { recursive: true });
      writeFileSync(join(dir, folder, 'x.JPEG'), '');
      writeFileSync(join(dir, folder, 'notes.txt'), '');
    }
    expect(readClassFolders(dir).map((i) => [i.path.split('/').at(-2), i.label])).toEqual([['n01', 0], ['n02', 1], ['n03', 2]]);
    writeFileSync(join(scratch, 'synsets.txt'), 'n03 third\nn00 other\nn01 first\nn02 second\n');
    expect(readClassFolders(dir, join(scratch, 'synsets.txt')).map((i) => i.label)).toEqual([2, 3, 0]);
  });

  it('reads a PASCAL palette mask as class ids: each pixel\'s palette index, 255 where ignored', async () => {
    const file = join(EVAL, 'voc_from_coco/SegmentationClass/000000000139.png');
    const { ids, width, height } = await readLabelMask(file);
    const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
    expect([width, height]).toEqual([info.width, info.height]);
    // PASCAL VOC's colour map turns the ids back into the colours the file shows (255: its boundary colour).
    const colourOf = (id: number) => (id === 255 ? [224, 224, 192] : classColour(id));
    for (let i = 0; i < ids.length; i += 97) expect(colourOf(ids[i]!), `pixel ${i}`).toEqual([...data.subarray(3 * i, 3 * i + 3)]);
    expect(new Set(ids).has(255)).toBe(true);
    expect([...new Set(ids)].every((id) => id <= 20 || id === 255)).toBe(true);
  });
});

describe('COCO mAP of our detections of the shared val2017 photos', () => {
  it('equals pycocotools\' within 1e-3', async () => {
    const dataset = readCocoDataset(join(EVAL, 'coco/annotations.json'));
    const target = await inProcessTarget({ models: ['ssdlite_mobilenet_v2_coco'] });
    try {
      const { results, metrics } = await evalDetection(target, undefined, dataset, join(EVAL, 'coco/val2017'), DETECTION_EVAL_SETTINGS);
      expect(results.length).toBeGreaterThan(50 * dataset.images.length);
      const { worst } = differenceFromPycocotools(dataset, results);
      console.log(`shared COCO set: mAP ${metrics.ap.toFixed(4)}, AP50 ${metrics.ap50.toFixed(4)}; largest difference from pycocotools ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-3);
      expect(metrics.ap).toBeGreaterThan(0.2);
    } finally {
      await target.close();
    }
  });
});

describe('npm run eval', () => {
  it('detection: progress, a report, results and COCO results JSON', async () => {
    const out = join(scratch, 'detection');
    const { stderr, results, report } = await evalCommand(['detection', '--annotations', join(EVAL, 'coco/annotations.json'), '--images', join(EVAL, 'coco/val2017'), '--limit', '6'], out);
    expect(stderr).toContain('6/6');
    expect(report).toMatch(/\| mAP@\[\.5:\.95\] \|/);
    expect(report).toContain('mAP 22.1');
    expect(results.metrics.ap).toBeGreaterThan(0);
    const detections = JSON.parse(readFileSync(join(out, 'detections.json'), 'utf8')) as { image_id: number; bbox: number[]; score: number }[];
    const images = new Set(readCocoDataset(join(EVAL, 'coco/annotations.json')).images.slice(0, 6).map((i) => i.id));
    expect(detections.length).toBeGreaterThan(6);
    expect(detections.every((d) => images.has(d.image_id) && d.bbox.length === 4 && d.score > 0)).toBe(true);
  });

  it('segmentation: mIoU over one confusion matrix of the labelled pixels', async () => {
    const out = join(scratch, 'segmentation');
    const args = ['segmentation', '--model', 'deeplabv3_mobilenet_v2_0.5_257', '--images', join(EVAL, 'coco/val2017'), '--masks', join(EVAL, 'voc_from_coco/SegmentationClass'), '--list', join(EVAL, 'voc_from_coco/list.txt'), '--limit', '3'];
    const { results } = await evalCommand(args, out);
    const counted = (results.confusion as number[][]).flat().reduce((a, b) => a + b, 0);
    expect(counted).toBe(results.metrics.pixels);
    expect(results.metrics.mIoU).toBeGreaterThan(0);
    expect(results.images).toBe(3);
  });

  it('classification against a running server answers image by image as in-process', async () => {
    const args = ['classification', '--labels', join(EVAL, 'imagenet/labels.tsv'), '--column', 'class_index_1000', '--limit', '12'];
    const local = await evalCommand(args, join(scratch, 'local'));
    const server = await startServer();
    try {
      const remote = await evalCommand([...args, '--url', server.base], join(scratch, 'remote'));
      expect(remote.results.images).toEqual(local.results.images);
      expect(remote.results.metrics.top1).toBe(local.results.metrics.top1);
      expect(local.results.labelClasses).toBe(1000);
      expect(local.report).toContain('1000-class convention; the model has 1001 outputs');
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('refuses what it cannot do with a message', async () => {
    await expect(evalCommand(['classification', '--labels', join(EVAL, 'imagenet/labels.tsv'), '--column', 'class_index_1001', '--label-classes', '1002', '--limit', '1'], join(scratch, 'bad'))).rejects.toThrow(/1002 classes and the model has 1001/);
    await expect(evalCommand(['detection', '--url', 'http://127.0.0.1:9', '--kernel', 'bilinear', '--annotations', 'x', '--images', 'y'], join(scratch, 'bad'))).rejects.toThrow(/a running server keeps its own preprocessing/);
  });
});
