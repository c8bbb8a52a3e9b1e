// A model's class names, both ways: class id to label for answers, label to class id for
// requests that filter by name.
import { readFileSync } from 'node:fs';

export class Labels {
  constructor(
    private readonly lines: readonly string[],
    /** The class id of the first line: 1 where the background class has no line. */
    private readonly offset = 0,
  ) {}

  /** One label per line; a blank line ends the list (the PASCAL VOC file adds a note after one). */
  static read(file: string, offset = 0): Labels {
    const lines = readFileSync(file, 'utf8').split('\n').map((l) => l.trim());
    const end = lines.indexOf('');
    return new Labels(end < 0 ? lines : lines.slice(0, end), offset);
  }

  /** Classes with a label. */
  get count(): number {
    return this.lines.length;
  }

  /** The class ids the labels cover: [offset, offset + count). */
  get firstClassId(): number {
    return this.offset;
  }

  of(classId: number): string {
    return this.lines[classId - this.offset] ?? `class ${classId}`;
  }

  /** The class id of a label, ignoring case; undefined for an unknown name or a placeholder ('n/a'). */
  idOf(name: string): number | undefined {
    const wanted = name.trim().toLowerCase();
    const index = this.lines.findIndex((label) => label.toLowerCase() === wanted && label !== 'n/a');
    return index < 0 ? undefined : index + this.offset;
  }
}
