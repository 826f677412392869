/** The model package: the case language, its reference semantics and the oracle. Pure: no I/O. */
export { Case, CASE_FORMAT, Program, Stack, Thread, type CaseInput } from './schema/case.ts';
export { Layer, LAYER_KINDS, DM_KINDS, layerModule, type LayerKind, type LayerOf } from './layers/index.ts';
export type { GeometryBounds, LayerKindModule, LayerRole, LayerSetup, Needs, SetupEnv, SetupStepSpec } from './layers/kind.ts';
export { FS_FACTS } from './layers/fs.ts';
export { Op, OP_KINDS, type OpKind, type OpOf } from './ops/index.ts';
export { analyzeStack, type StackInfo } from './stack.ts';
export { stackReusable, stackReuseRefusal } from './stack-reuse.ts';
export { validateCase, formatPath, type CaseIssue, type ValidationResult } from './validate.ts';
export { Observation, OpResult, ObservedExtent, FinalContent, ObservedGeometry } from './observation.ts';
export { judgeObservation, predictObservation, type OracleAnswer } from './oracle.ts';
export { patternByte, patternBytes, decodeBytes, type DecodedExtent } from './pattern.ts';
export * from './verdict.ts';
