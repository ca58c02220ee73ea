// Bounded stopping: a process told to stop exits within a stated time whether or not its bus
// answers. With the server gone, a drain or a service stop waits on a PONG that does not come, and
// a KV write waits out its JetStream timeout (5 s), so every wait on the bus is raced here.
import type { Logger } from './log.js';

/** How long queries already accepted may take to finish (their own deadlines usually end far sooner). */
export const STOP_DRAIN_MS = 10_000;
/** Shared by every step that needs the server: withdrawing services, KV clean-up, the connection drain. */
export const STOP_BUS_MS = 3_000;
/** After this a stopping process exits regardless (exit code 1, with a warning). */
export const STOP_DEADLINE_MS = STOP_DRAIN_MS + STOP_BUS_MS + 2_000;

export type Settled<T> = { settled: true; value: T } | { settled: true; error: unknown } | { settled: false };

/** The work's outcome, or `{settled:false}` once `ms` have passed (the work is left to itself). */
export function settleWithin<T>(work: Promise<T>, ms: number): Promise<Settled<T>> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ settled: false }), Math.max(0, ms));
    work.then(
      (value) => { clearTimeout(timer); resolve({ settled: true, value }); },
      (error: unknown) => { clearTimeout(timer); resolve({ settled: true, error }); },
    );
  });
}

/**
 * A time budget shared by the steps of a stop: each waits at most what is left of it, so a dead
 * bus costs the budget once, not once per step. A step cut short is logged and left running.
 */
export class StopBudget {
  private readonly endsAt: number;

  constructor(readonly ms: number, private readonly log: Logger) {
    this.endsAt = Date.now() + ms;
  }

  get leftMs(): number {
    return Math.max(0, this.endsAt - Date.now());
  }

  /** Runs one step; true when it finished (or failed) in time, false when the budget ran out first. */
  async step(what: string, work: () => Promise<unknown> | unknown, ms = this.leftMs): Promise<boolean> {
    let p: Promise<unknown>;
    try { p = Promise.resolve(work()); } catch (err) { p = Promise.reject(err); }
    const r = await settleWithin(p, Math.min(ms, this.leftMs));
    if (!r.settled) this.log.warn({ step: what, budgetMs: this.ms }, 'stop step did not finish in time (is the NATS server gone?): going on without it');
    else if ('error' in r) this.log.warn({ step: what, err: (r.error as Error)?.message ?? String(r.error) }, 'stop step failed: going on');
    return r.settled;
  }
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGINT: 2, SIGTERM: 15 };

/** Resolves with the first SIGINT or SIGTERM (the listeners are removed again). */
export function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export interface ExitAfterStopOptions {
  log: Logger;
  /** Default STOP_DEADLINE_MS. */
  deadlineMs?: number;
  /** Default process.exit (its 'exit' hooks still run: an embedded nats-server is killed). */
  exit?: (code: number) => void;
}

/**
 * Runs `stop` and exits: 0 once it finished, 1 when the deadline passed first. Meanwhile a second
 * SIGINT or SIGTERM exits at once, with the shell's code for that signal (130, 143).
 */
export async function exitAfterStop(stop: () => Promise<void>, o: ExitAfterStopOptions): Promise<void> {
  // The logger writes asynchronously: flush it (briefly) so the stop's warnings are not lost.
  const exit = o.exit ?? ((code: number) => {
    setTimeout(() => process.exit(code), 500).unref();
    o.log.flush(() => process.exit(code));
  });
  const deadlineMs = o.deadlineMs ?? STOP_DEADLINE_MS;
  const again = (s: NodeJS.Signals) => {
    o.log.warn({ signal: s }, 'second signal while stopping: exiting now');
    exit(128 + (SIGNAL_NUMBERS[s] ?? 1));
  };
  process.on('SIGINT', again);
  process.on('SIGTERM', again);
  const started = Date.now();
  const r = await settleWithin(Promise.resolve().then(stop), deadlineMs);
  process.off('SIGINT', again);
  process.off('SIGTERM', again);
  if (!r.settled) {
    o.log.warn({ deadlineMs }, 'stop deadline passed: exiting without finishing');
    exit(1);
  } else if ('error' in r) {
    o.log.error({ err: r.error }, 'stop failed: exiting');
    exit(1);
  } else {
    o.log.info({ ms: Date.now() - started }, 'stopped');
    exit(0);
  }
}
