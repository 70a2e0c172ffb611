/**
 * `meterflow replay`: re-read a topic for a consumer group from a timestamp or an offset, or copy
 * part of a topic into another topic. Refused while the group has active members: moving the
 * offsets of a running group would race its own commits.
 */
import type { Admin } from 'kafkajs';
import { MeterflowError } from '../lib/errors.js';
import { abortable, createKafka, ensureTopics, readToEnd, topicOffsets } from '../lib/kafka.js';
import { loadConfig } from '../lib/config.js';
import { TOPICS, topicName, type TopicId } from '../schemas/topics.js';
import { commandDeadline, parse, timeoutOption, type Command } from './args.js';
import { bar, terminal } from './terminal.js';

/** Accepts a catalogue name (raw.usage) or a full topic name. */
export function resolveTopic(prefix: string, name: string): string {
  const id = (Object.keys(TOPICS) as TopicId[]).find((k) => TOPICS[k].logical === name);
  return id ? topicName(prefix, id) : name;
}

export async function assertGroupIdle(admin: Admin, groupId: string, signal?: AbortSignal): Promise<void> {
  const { groups } = await abortable(admin.describeGroups([groupId]), signal);
  const g = groups[0];
  if (g && g.members.length > 0) {
    throw new MeterflowError(
      'CLI_REFUSED',
      `consumer group ${groupId} has ${g.members.length} active member(s) (state ${g.state}); stop them first`,
      {
        context: { groupId, state: g.state },
      },
    );
  }
}

type From =
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'timestamp'; ms: number }
  | { kind: 'offset'; offset: string };

export function parseFrom(value: string | undefined): From {
  if (!value || value === 'earliest' || value === 'beginning') return { kind: 'earliest' };
  if (value === 'latest' || value === 'end') return { kind: 'latest' };
  if (/^\d+$/.test(value)) return { kind: 'offset', offset: value };
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw new MeterflowError(
      'CLI_USAGE',
      `--from must be earliest, latest, an offset or an ISO timestamp, not "${value}"`,
    );
  return { kind: 'timestamp', ms };
}

export async function offsetsFor(
  admin: Admin,
  topic: string,
  from: From,
  signal?: AbortSignal,
): Promise<{ partition: number; offset: string }[]> {
  const offsets = await abortable(topicOffsets(admin, topic), signal);
  switch (from.kind) {
    case 'earliest':
      return offsets.map((o) => ({ partition: o.partition, offset: o.low }));
    case 'latest':
      return offsets.map((o) => ({ partition: o.partition, offset: o.high }));
    case 'offset':
      return offsets.map((o) => ({ partition: o.partition, offset: from.offset }));
    case 'timestamp':
      return (await abortable(admin.fetchTopicOffsetsByTimestamp(topic, from.ms), signal)).map((o) => ({
        partition: o.partition,
        offset: o.offset,
      }));
  }
}

export const replayCommand: Command = {
  summary: 'replay a topic for a consumer group from a timestamp or offset, or copy it into another topic',
  help: `Usage:
  meterflow replay --topic <topic> --group <group> [--from earliest|latest|<offset>|<ISO time>]
  meterflow replay --topic <topic> --to-topic <topic> [--from ...] [--until <ISO time>]

The first form moves the group's committed offsets so that its consumers re-read the topic; it is
refused (exit 3) while the group has active members. Replays are safe: stages replace slots and
ClickHouse keeps the latest version, so nothing is counted twice.
The second form copies records (key, value, headers) into another topic, e.g. a fresh prefix.

Topics may be given by catalogue name (raw.usage, usage, quarantine...) or full name.
--timeout SECONDS bounds the whole command, connecting included (CLI_TIMEOUT after it): default
60 s for --group, 3600 s for a copy with --to-topic.
Processor groups are <prefix>processors.entities|usage|aggregate; sink groups <prefix>sink.<family>.`,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        topic: { type: 'string' },
        group: { type: 'string' },
        'to-topic': { type: 'string' },
        from: { type: 'string' },
        until: { type: 'string' },
        ...timeoutOption,
      },
      false,
    );
    if (!values.topic) throw new MeterflowError('CLI_USAGE', 'replay needs --topic');
    if (!values.group === !values['to-topic'])
      throw new MeterflowError('CLI_USAGE', 'replay needs exactly one of --group or --to-topic');
    const config = loadConfig();
    const topic = resolveTopic(config.kafka.topicPrefix, values.topic);
    const from = parseFrom(values.from);
    const deadline = commandDeadline('meterflow replay', values.timeout, values.group ? 60 : 3_600);
    const signal = deadline.signal;
    const kafka = createKafka(config, '-cli');
    const admin = kafka.admin();
    const connecting = admin.connect();
    try {
      await abortable(connecting, signal);
      if (values.group) {
        await assertGroupIdle(admin, values.group, signal);
        const partitions = await offsetsFor(admin, topic, from, signal);
        await abortable(admin.setOffsets({ groupId: values.group, topic, partitions }), signal);
        terminal().line(
          `group ${values.group} on ${topic} now at ${partitions.map((p) => `${p.partition}:${p.offset}`).join(' ')}`,
        );
        return 0;
      }
      const target = resolveTopic(config.kafka.topicPrefix, values['to-topic']!);
      const meta = await abortable(admin.fetchTopicMetadata({ topics: [topic] }), signal);
      await abortable(
        ensureTopics(admin, config, [
          {
            name: target,
            cleanup: 'delete',
            partitions: meta.topics[0]?.partitions.length ?? config.kafka.partitions,
          },
        ]),
        signal,
      );
      const start = new Map(
        (await offsetsFor(admin, topic, from, signal)).map((p) => [p.partition, BigInt(p.offset)]),
      );
      // For the progress bar only: the whole topic is scanned (transaction markers count too).
      const total = (await abortable(topicOffsets(admin, topic), signal)).reduce(
        (n, o) => n + Math.max(0, Number(o.high) - Number(o.low)),
        0,
      );
      const term = terminal();
      let read = 0;
      let copied = 0;
      const progress = () =>
        term.status(
          `copying ${topic} → ${target}: ${bar(read, total)} ${read}/${total} read, ${copied} copied`,
        );
      const until = values.until ? Date.parse(values.until) : Number.POSITIVE_INFINITY;
      const producer = kafka.producer({ idempotent: true });
      const producing = producer.connect();
      await abortable(producing, signal);
      progress();
      let pending: {
        key: Buffer | null;
        value: Buffer | null;
        headers: Record<string, string>;
        partition: number;
      }[] = [];
      const flush = async () => {
        if (pending.length === 0) return;
        await abortable(producer.send({ topic: target, messages: pending }), signal);
        copied += pending.length;
        pending = [];
      };
      try {
        await readToEnd(
          kafka,
          topic,
          async (m) => {
            if (++read % 500 === 0) progress();
            if (BigInt(m.offset) < (start.get(m.partition) ?? 0n) || Number(m.timestamp) > until) return;
            pending.push({ key: m.key, value: m.value, headers: m.headers, partition: m.partition });
            if (pending.length >= 500) await flush();
          },
          { signal, timeoutMs: Number.POSITIVE_INFINITY },
        );
        await flush();
      } finally {
        const closing = producing.then(
          () => producer.disconnect(),
          () => undefined,
        );
        if (!signal.aborted) await closing;
      }
      term.endStatus();
      term.line(`copied ${copied} record(s) from ${topic} to ${target}`);
      return 0;
    } finally {
      deadline.clear();
      // After a deadline the connect may still be pending: disconnect whenever it settles.
      const closing = connecting.then(
        () => admin.disconnect(),
        () => undefined,
      );
      if (!signal.aborted) await closing;
    }
  },
};
