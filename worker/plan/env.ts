/**
 * The naming policy shared by every target's SetupEnv: where a layer's device
 * node is, where filesystems are mounted, where files are. Devices found at
 * set-up time (loop, scsi_debug) are ${captures}; dm and md devices get
 * names of their own, prefixed so that runs never collide.
 */
import { createHash } from 'node:crypto';
import { DM_KINDS, type SetupEnv, type StackInfo } from '../../model/index.ts';

export interface EnvOptions {
  workDir: string;
  namePrefix: string;
  seed: number;
  info: StackInfo;
  disks: SetupEnv['disks'];
  diskDevice?: (id: string) => string;
}

export function makeSetupEnv(o: EnvOptions): SetupEnv {
  const mountPoint = (fsId: string) => `${o.workDir}/mnt-${fsId}`;
  const env: SetupEnv = {
    workDir: o.workDir,
    namePrefix: o.namePrefix,
    disks: o.disks,
    diskDevice: o.diskDevice,
    devicePath(id) {
      const l = o.info.layer(id);
      if (!l) return `\${dev_${id}}`;
      if (l.kind === 'disk' && o.disks === 'virtio' && o.diskDevice) return o.diskDevice(id);
      if (DM_KINDS.has(l.kind)) return `/dev/mapper/${o.namePrefix}${id}`;
      if (l.kind === 'md') return `/dev/md/${o.namePrefix}${id}`;
      return `\${dev_${id}}`;
    },
    mountPoint,
    filePath(fileId) {
      const f = o.info.layer(fileId);
      return f?.kind === 'file' ? `${mountPoint(f.on)}/${f.name}` : `${o.workDir}/${fileId}`;
    },
    keyHex(layerId, bytes) {
      let out = '';
      for (let i = 0; out.length < bytes * 2; i++) out += createHash('sha256').update(`${o.seed}:${layerId}:${i}`).digest('hex');
      return out.slice(0, bytes * 2);
    },
  };
  return env;
}
