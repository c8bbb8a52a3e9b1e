// Model repositories for tests, written into a temporary folder: the third-party models of
// ../shared/models/third-party served with nothing but a config each, as a user would add them.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

export const NSFW_CLASSES = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'];
/** torchvision's normalization, as its documentation states it (ImageNet statistics in [0, 1] units). */
export const TORCHVISION_MEAN = [0.485, 0.456, 0.406];
export const TORCHVISION_STD = [0.229, 0.224, 0.225];
export const TORCHVISION_FILES = {
  tv_mobilenet_v2_1_0_224: 'third-party/torchvision/tv_mobilenet_v2_1.0_224_random.onnx',
  tv_mobilenet_v2_0_5_160: 'third-party/torchvision/tv_mobilenet_v2_0.5_160_random.onnx',
};

export interface VersionFiles {
  config: Record<string, unknown>;
  /** Extra files of the version folder, by name. */
  files?: Record<string, string | Buffer>;
}

/** Writes a version folder: its config.yaml and files. */
export function writeVersion(repository: string, name: string, version: number, { config, files = {} }: VersionFiles): string {
  const dir = join(repository, name, String(version));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.yaml'), stringify(config));
  for (const [file, data] of Object.entries(files)) writeFileSync(join(dir, file), data);
  return dir;
}

export const labelLines = (labels: readonly string[]) => `${labels.join('\n')}\n`;

/** A fresh repository holding the nsfwjs layers model and the two torchvision ONNX exports. */
export function thirdPartyRepository(): string {
  const repository = mkdtempSync(join(tmpdir(), 'repository-'));
  writeVersion(repository, 'nsfwjs', 1, {
    config: {
      task: 'classification',
      format: 'tfjs-layers',
      weights: '@models/third-party/nsfwjs_mobilenet_v2',
      labels: 'labels.txt',
      // Its library divides by 255: inputs in [0, 1].
      preprocessing: { scale: 1 / 255 },
      description: 'nsfwjs content moderation, a fine-tuned Keras MobileNetV2',
    },
    files: { 'labels.txt': labelLines(NSFW_CLASSES) },
  });
  for (const [name, file] of Object.entries(TORCHVISION_FILES)) {
    writeVersion(repository, name, 1, {
      config: {
        task: 'classification',
        format: 'onnx',
        weights: `@models/${file}`,
        labels: 'labels.txt',
        preprocessing: { mean: TORCHVISION_MEAN, std: TORCHVISION_STD },
      },
      files: { 'labels.txt': labelLines(Array.from({ length: 1000 }, (_, i) => `class ${i}`)) },
    });
  }
  return repository;
}
