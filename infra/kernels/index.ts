/** Debian kernels for the QEMU target: the archive's catalog, fetching, and what is fetched. */
export { AptError, type AvailableKernel, availableKernels } from './catalog.ts';
export { EXTRA_MODULES, type ExtraModuleSpec, ExtraModuleError, buildExtraModules, describeExtraModule, ensureExtraModules, extraModuleChecks } from './extra-modules.ts';
export { type FetchOptions, KernelFetchError, fetchKernel } from './fetch.ts';
export { FLAVOURS, compareNewestFirst, kernelIdProblem, packageName, parseKernelId } from './id.ts';
export { PROJECT_ROOT, cacheRoot, kernelsDir } from './paths.ts';
export { ToolMissingError } from './proc.ts';
export { type ExtraModuleRecord, type FetchedKernel, type KernelInfo, fetchedKernels, kernelDir, loadFetched, newestFetched } from './store.ts';
