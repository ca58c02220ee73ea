// Bounded stopping: steps share one budget, a step that never ends is abandoned, and the process
// exit code says whether the stop finished.
import t from 'tap';
import { exitAfterStop, settleWithin, StopBudget } from '../runtime/stopping.js';
import { silentLogger } from '../runtime/log.js';

const never = () => new Promise<void>(() => {});

t.test('settleWithin reports a value, an error, or that the work is still running', async (t) => {
  t.same(await settleWithin(Promise.resolve(7), 1000), { settled: true, value: 7 });
  const failed = await settleWithin(Promise.reject(new Error('no')), 1000);
  t.equal(failed.settled && 'error' in failed && (failed.error as Error).message, 'no');
  t.same(await settleWithin(never(), 10), { settled: false });
});

t.test('a stuck step spends the shared budget once: later steps are abandoned at once', async (t) => {
  const budget = new StopBudget(50, silentLogger);
  t.equal(await budget.step('stuck', never), false);
  t.equal(budget.leftMs, 0);
  let ran = false;
  t.equal(await budget.step('next', async () => { ran = true; await never(); }), false, 'abandoned: nothing left to wait');
  t.ok(ran, 'but it was still started (its local part runs)');
  t.equal(await budget.step('sync', () => undefined), true, 'a step that needs no waiting still completes');
});

t.test('a step that throws counts as finished', async (t) => {
  const budget = new StopBudget(1000, silentLogger);
  t.equal(await budget.step('throws', () => { throw new Error('boom'); }), true);
});

t.test('exit code: 0 when the stop finished, 1 when it failed or the deadline cut it short', async (t) => {
  const codes: number[] = [];
  const exit = (c: number) => { codes.push(c); };
  await exitAfterStop(async () => {}, { log: silentLogger, exit });
  await exitAfterStop(async () => { throw new Error('x'); }, { log: silentLogger, exit });
  await exitAfterStop(never, { log: silentLogger, exit, deadlineMs: 20 });
  t.same(codes, [0, 1, 1]);
});

t.test('a second signal while stopping exits at once with the signal\'s code', async (t) => {
  const codes: number[] = [];
  const stopping = exitAfterStop(never, { log: silentLogger, exit: (c) => codes.push(c), deadlineMs: 200 });
  process.emit('SIGTERM', 'SIGTERM');
  t.same(codes, [143]);
  await stopping;
});
