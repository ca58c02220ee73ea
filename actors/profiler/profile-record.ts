// Pure: what a finished measurement writes into each variant's profile record, and how its
// accuracy reads in the profile.finished event.
import type { LatencyPoint, ModelRecord, ProfileRecord } from '../../schemas/registry.js';
import { agreementFigure } from '../../runtime/metrics.js';
import type { MeasureResult } from './profile-measure.js';

/**
 * A finished profile's measured fields for a variant whose batch cap is `maxBatch`. Without a
 * validation set the accuracy is the declared one, named 'declared'.
 */
export function profileFields(result: MeasureResult, model: Pick<ModelRecord, 'declaredAccuracy'>, maxBatch: number): Partial<ProfileRecord> {
  const upTo = (curve: LatencyPoint[]) => curve.filter((p) => p.batch <= maxBatch);
  const declared = result.accuracy === undefined ? model.declaredAccuracy : undefined;
  return {
    loadMs: result.loadMs, peakMemoryBytes: result.peakMemoryBytes, latency: upTo(result.latency),
    ...(result.sizes ? { sizes: result.sizes.map((s) => ({ ...s, latency: upTo(s.latency) })) } : {}),
    ...(result.accuracy !== undefined ? { accuracy: result.accuracy, accuracySource: result.accuracySource, metric: result.metric } : {}),
    ...(declared !== undefined ? { accuracy: declared, accuracySource: 'declared' as const, metric: 'declared' } : {}),
    ...(result.top5 !== undefined ? { top5: result.top5 } : {}),
    ...(result.fidelity ? { fidelity: result.fidelity } : {}),
    ...(result.validationSamples ? { validationSamples: result.validationSamples } : {}),
  };
}

/** ", accuracy 97.10% (top1)" or ", fidelity:iou 0.82 x declared 0.9" for the profile.finished event. */
export function accuracyNote(result: MeasureResult, model: Pick<ModelRecord, 'declaredAccuracy'>): string {
  if (result.accuracy === undefined) return model.declaredAccuracy !== undefined ? `, accuracy ${(model.declaredAccuracy * 100).toFixed(2)}% (declared)` : '';
  if (result.accuracySource === 'fidelity' && result.fidelity) {
    const figure = agreementFigure(result.fidelity, (result.metric?.split(':')[1] ?? 'argmax') as 'argmax' | 'iou' | 'cosine') ?? result.accuracy;
    return `, ${result.metric} ${figure.toFixed(3)}${model.declaredAccuracy !== undefined ? ` x declared ${model.declaredAccuracy}` : ''}`;
  }
  return `, accuracy ${(result.accuracy * 100).toFixed(2)}% (${result.metric})`;
}
