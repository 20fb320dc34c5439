import { describe, expect, it } from 'vitest';
import { createReloadTrigger } from '../../dns/zone-watch.js';
import type { FileStamp } from '../../dns/zone-watch.js';
import { flush, ManualClock } from '../helpers/manual-clock.js';

/** A trigger over a fake directory whose files the test writes. */
function setup(settleMs = 2000) {
  const clock = new ManualClock();
  const files = new Map<string, FileStamp>();
  const reloads: string[] = [];
  const trigger = createReloadTrigger({
    clock, settleMs,
    stat: async (name) => files.get(name),
    reload: (why) => reloads.push(why),
  });
  const write = async (name: string, size: number, event = 'change'): Promise<void> => {
    files.set(name, { size, mtimeMs: clock.now() });
    trigger.onEvent(event, name);
    await flush();
  };
  return { clock, files, reloads, trigger, write };
}

describe('zone reload trigger', () => {
  it('loads a file written in place only after it has been stable for the settle time', async () => {
    const { clock, reloads, write } = setup();
    await write('a.zone', 100);
    await clock.tick(1999);
    expect(reloads).toEqual([]);
    await clock.tick(1);
    expect(reloads).toEqual(['a.zone settled']);
  });

  it('a pause shorter than the settle time does not end a two-step write', async () => {
    const { clock, reloads, write } = setup();
    await write('a.zone', 100);
    await clock.tick(1000);
    await write('a.zone', 200);
    await clock.tick(1999);
    expect(reloads).toEqual([]);
    await clock.tick(1);
    expect(reloads).toEqual(['a.zone settled']);
  });

  it('waits again when size or mtime moved on without an event', async () => {
    const { clock, files, reloads, write } = setup();
    await write('a.zone', 100);
    await clock.tick(500);
    files.set('a.zone', { size: 150, mtimeMs: clock.now() }); // the event was lost
    await clock.tick(1500);
    expect(reloads).toEqual([]);
    await clock.tick(2000);
    expect(reloads).toEqual(['a.zone settled']);
  });

  it('a file renamed into place is loaded at once, and cancels a pending settle', async () => {
    const { clock, reloads, write } = setup();
    await write('a.zone', 100);
    await write('a.zone', 300, 'rename');
    expect(reloads).toEqual(['a.zone replaced']);
    await clock.tick(5000);
    expect(reloads).toEqual(['a.zone replaced']);
  });

  it('a removed file reloads at once; a new empty file (created in place) settles', async () => {
    const { clock, files, reloads, trigger, write } = setup();
    files.delete('gone.gslb.yaml');
    trigger.onEvent('rename', 'gone.gslb.yaml');
    await flush();
    expect(reloads).toEqual(['gone.gslb.yaml removed']);
    await write('new.zone', 0, 'rename');
    expect(reloads).toHaveLength(1);
    await write('new.zone', 80);
    await clock.tick(2000);
    expect(reloads).toEqual(['gone.gslb.yaml removed', 'new.zone settled']);
  });

  it('ignores other files; an event without a name settles the directory', async () => {
    const { clock, reloads, trigger, write } = setup(300);
    await write('notes.txt', 10);
    await write('.a.zone.swp', 10);
    trigger.onEvent('change', null);
    await clock.tick(300);
    expect(reloads).toEqual(['file changed']);
  });

  it('stop cancels what is settling', async () => {
    const { clock, reloads, trigger, write } = setup();
    await write('a.zone', 100);
    expect(trigger.settling).toBe(1);
    trigger.stop();
    await clock.tick(5000);
    expect(reloads).toEqual([]);
    expect(clock.pending).toBe(0);
  });
});
