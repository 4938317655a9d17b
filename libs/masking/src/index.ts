export { compileProfile, CompiledMaskingProfile, alignLineage, type CompileOptions, type StreamRedactor } from './compiled-profile.js';
export { DEFAULT_PROFILE } from './default-profile.js';
export { DETECTOR_NAMES, DetectorSet, isDetectorName, luhnValid, ibanValid, shannonEntropy, HIGH_ENTROPY_THRESHOLD, type DetectorName, type Finding } from './detectors.js';
export { foldToAscii } from './fold.js';
export { parseJsonPath, type JsonPath } from './json-path.js';
export { analyzeOutputLineage, loadSqlParser, type OutputColumnLineage, type SourceColumn } from './lineage.js';
export { MaskingProfileError, validateProfileSpec, type MaskingHits, type MaskingProfileSpec, type MaskingRuleSpec } from './profile.js';
export { PgType, type MaskingRefusal, type ResultColumn, type ResultMaskPlan } from './result-plan.js';
export { isStrategy, MIN_HASH_KEY_BYTES, REDACTED, STRATEGIES, type MaskingStrategy } from './strategies.js';
