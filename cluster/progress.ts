// Registration progress for people: a progress bar on a terminal, one line per milestone otherwise.
import cliProgress from 'cli-progress';
import type { RegistryEvent } from '../schemas/registry.js';

export function registrationProgress(out: NodeJS.WriteStream = process.stdout): { onEvent: (e: RegistryEvent) => void; done: () => void } {
  const bars = new Map<string, cliProgress.SingleBar>();
  const tty = Boolean(out.isTTY);
  const multi = tty ? new cliProgress.MultiBar({ format: ' {model} [{bar}] {percentage}% {note}', hideCursor: true, stream: out, clearOnComplete: false }, cliProgress.Presets.shades_classic) : undefined;
  return {
    onEvent: (e) => {
      if (multi) {
        let bar = bars.get(e.model);
        if (!bar) { bar = multi.create(100, 0, { model: e.model.padEnd(12), note: '' }); bars.set(e.model, bar); }
        const pct = e.type === 'registration.completed' ? 100 : e.type === 'registration.progress' ? Math.round((e.progress ?? 0) * 100) : undefined;
        if (e.type === 'registration.progress' || e.type === 'registration.completed' || e.type === 'registration.failed' || e.type === 'variants.generated' || e.type === 'profile.started') {
          bar.update(pct ?? bar.getProgress() * 100, { note: e.message.slice(0, 60) });
        }
        return;
      }
      if (['registration.received', 'variants.generated', 'registration.completed', 'registration.failed', 'profile.finished'].includes(e.type)) {
        out.write(`[${e.model}] ${e.message}\n`);
      }
    },
    done: () => multi?.stop(),
  };
}
