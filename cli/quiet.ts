/**
 * Waiting until the pipeline has caught up: every consumer group under the topic prefix is at
 * the end of its topics. A group reading transactional output stops one short of the end of a
 * partition (the final commit marker), so "caught up" is a lag of at most 1 per partition,
 * seen three polls in a row.
 */
import type { Admin, Kafka } from 'kafkajs';
import { MeterflowError } from '../lib/errors.js';
import { committedLag, topicOffsets } from '../lib/kafka.js';

export async function prefixLag(
  admin: Admin,
  prefix: string,
): Promise<{ total: number; quiet: boolean; suspects: { group: string; topic: string }[] }> {
  const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
  const highs = new Map<string, Map<number, number>>();
  let total = 0;
  let quiet = true;
  const suspects: { group: string; topic: string }[] = [];
  for (const groupId of groups) {
    for (const t of await admin.fetchOffsets({ groupId })) {
      let high = highs.get(t.topic);
      if (!high) {
        high = new Map((await topicOffsets(admin, t.topic)).map((o) => [o.partition, Number(o.high)]));
        highs.set(t.topic, high);
      }
      let suspect = false;
      for (const [partition, hi] of high) {
        const committed = Number(t.partitions.find((p) => p.partition === partition)?.offset ?? -1);
        const lag = committed < 0 ? hi : Math.max(0, hi - committed);
        total += lag;
        if (lag > 1) suspect = true;
      }
      if (suspect) {
        quiet = false;
        suspects.push({ group: groupId, topic: t.topic });
      }
    }
  }
  return { total, quiet: quiet && groups.length > 0, suspects };
}

export async function waitUntilQuiet(
  admin: Admin,
  prefix: string,
  timeoutMs: number,
  progress?: (lag: number, peak: number) => void,
  /** With it, offsets that stood still for three polls are checked for records (committedLag). */
  kafka?: Kafka,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let streak = 0;
  let peak = 0;
  let last = -1;
  let still = 0;
  while (Date.now() < deadline) {
    const { total, quiet, suspects } = await prefixLag(admin, prefix);
    still = total === last ? still + 1 : 0;
    last = total;
    let settled = quiet;
    // Several transaction markers in a row (aborts, retried commits) look like lag to the
    // offsets alone: once nothing moves, ask whether any record is really left to read.
    if (!quiet && kafka && still >= 3) {
      settled = true;
      for (const s of suspects)
        if ((await committedLag(kafka, admin, s.group, s.topic)).some((p) => p.lag > 0)) settled = false;
    }
    peak = Math.max(peak, total);
    progress?.(settled ? 0 : total, peak);
    streak = settled ? streak + 1 : 0;
    if (streak >= 3) return;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  throw new MeterflowError('RT_STATE_RESTORE', `the pipeline did not catch up within ${timeoutMs / 1000} s`, {
    retriable: true,
  });
}
