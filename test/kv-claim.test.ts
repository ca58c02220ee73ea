// Claims in KV are compare-and-set: of racing creates exactly one wins, and only the holder's
// revision removes the claim.
import t from 'tap';
import { kvCreate, kvGet, kvPurgeAt, kvUpdate } from '../runtime/bus/store.js';
import { connectTest, startTestNats } from './helpers/system.js';

t.test('racing creates of one key: exactly one wins; conditional writes follow its revision', async (t) => {
  const server = await startTestNats(t);
  const { stores } = await connectTest(t, server.url);
  const outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) => kvCreate(stores.models, 'claimed', { by: i })));
  const won = outcomes.filter((o): o is number => o !== false);
  t.equal(won.length, 1, 'one create wins');
  const rev = won[0]!;
  t.equal(await kvUpdate(stores.models, 'claimed', { by: 'late' }, rev + 100), false, 'a write at another revision loses');
  t.equal(await kvPurgeAt(stores.models, 'claimed', rev + 100), false, 'so does a purge');
  const next = await kvUpdate(stores.models, 'claimed', { by: 'holder' }, rev);
  t.ok(next, 'the holder writes at its revision');
  t.equal(await kvPurgeAt(stores.models, 'claimed', rev), false, 'not at its old one');
  t.equal(await kvPurgeAt(stores.models, 'claimed', next as number), true, 'and removes its claim at its current one');
  t.equal(await kvGet(stores.models, 'claimed'), undefined);
  const again = await Promise.all([kvCreate(stores.models, 'claimed', { by: 'a' }), kvCreate(stores.models, 'claimed', { by: 'b' })]);
  t.equal(again.filter((o) => o !== false).length, 1, 'after a purge, racing creates again have one winner');
});
