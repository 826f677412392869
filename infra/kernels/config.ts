/**
 * A kernel's .config, read: `CONFIG_X=y|m|"string"|123`, and
 * `# CONFIG_X is not set`. Options are named without the CONFIG_ prefix, as
 * the layer kinds list them (model/layers: needs().config).
 */
import { readFile } from 'node:fs/promises';

export type ConfigValue = string;

export class KernelConfig {
  private constructor(private readonly values: ReadonlyMap<string, ConfigValue>) {}

  static parse(text: string): KernelConfig {
    const values = new Map<string, ConfigValue>();
    for (const line of text.split('\n')) {
      const set = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/.exec(line.trim());
      if (set) {
        values.set(set[1]!, set[2]!.replace(/^"(.*)"$/, '$1'));
        continue;
      }
      const unset = /^# CONFIG_([A-Za-z0-9_]+) is not set$/.exec(line.trim());
      if (unset) values.set(unset[1]!, 'n');
    }
    return new KernelConfig(values);
  }

  static async load(file: string): Promise<KernelConfig> {
    return KernelConfig.parse(await readFile(file, 'utf8'));
  }

  get size(): number {
    return this.values.size;
  }

  /** 'y', 'm', 'n' (not set or absent), or the option's value. */
  get(option: string): ConfigValue {
    return this.values.get(option.replace(/^CONFIG_/, '')) ?? 'n';
  }

  builtIn(option: string): boolean {
    return this.get(option) === 'y';
  }

  /** Built in or a module. */
  enabled(option: string): boolean {
    const v = this.get(option);
    return v !== 'n' && v !== '';
  }

  /** The first option that is neither built in nor a module. */
  firstMissing(options: readonly string[]): string | undefined {
    return options.find((o) => !this.enabled(o));
  }
}
