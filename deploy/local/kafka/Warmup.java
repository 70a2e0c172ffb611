// Readiness probe and warm-up for the local Kafka broker, run by deploy/local/services with
// `java -cp '<kafka libs>/*' Warmup.java <bootstrap> <timeout-seconds>` (single-file source launch).
// It waits until the broker answers metadata requests, then makes the broker create and load its
// internal topics (__consumer_offsets through a group-coordinator lookup, __transaction_state
// through initTransactions), so the first test does not meet "coordinator is loading" errors.
// Exit 0 when ready, 1 when not ready within the timeout.
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class Warmup {
  public static void main(String[] args) throws Exception {
    String bootstrap = args.length > 0 ? args[0] : "127.0.0.1:19092";
    long timeoutMs = TimeUnit.SECONDS.toMillis(args.length > 1 ? Long.parseLong(args[1]) : 60);
    long deadline = System.currentTimeMillis() + timeoutMs;
    Exception last = null;
    while (System.currentTimeMillis() < deadline) {
      try {
        step(bootstrap, Math.max(1000, deadline - System.currentTimeMillis()));
        System.out.println("kafka ready at " + bootstrap);
        return;
      } catch (Exception e) {
        last = e;
        Thread.sleep(500);
      }
    }
    System.err.println("kafka not ready at " + bootstrap + ": " + last);
    System.exit(1);
  }

  static void step(String bootstrap, long budgetMs) throws Exception {
    int t = (int) Math.min(budgetMs, 15000);
    Properties a = new Properties();
    a.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    a.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, t);
    a.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, t);
    try (Admin admin = Admin.create(a)) {
      admin.describeCluster().nodes().get(t, TimeUnit.MILLISECONDS);
      // FindCoordinator(group) creates __consumer_offsets and waits for it to load.
      admin.listConsumerGroupOffsets("meterflow-local-warmup").partitionsToOffsetAndMetadata()
          .get(t, TimeUnit.MILLISECONDS);
    }
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "meterflow-local-warmup");
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, t);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
      // InitProducerId(transactional) creates __transaction_state and waits for it to load.
      producer.initTransactions();
      producer.close(Duration.ofSeconds(5));
    }
  }
}
