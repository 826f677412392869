/** The guest image for the QEMU target: agent, executor, tools, modules. */
export { GuestBuildError, type GuestImage, type GuestManifest, buildAgent, buildGuestImage, guestDir } from './build.ts';
export { GUEST_TOOLS, ON_DEMAND_MODULES, PRELOAD_MODULES } from './contents.ts';
