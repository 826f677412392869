/**
 * The executor's decoder must equal the model's reference decoder exactly;
 * the executor tests import it under the names they use.
 */
export { type DecodeCandidate as Cand, decodeBytes as decodeMirror } from '../../model/pattern.ts';
