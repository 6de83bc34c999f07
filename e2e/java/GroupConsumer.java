import java.io.PrintStream;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Consumes TOPIC in consumer group GROUP with the Java client, group.protocol
 * PROTOCOL (classic or consumer), auto-committing every second, until its
 * standard input closes, and prints what it sees:
 *
 *   REC partition offset value epoch-ms
 *   ASSIGNED|REVOKED|LOST epoch-ms [partitions]
 *
 * Usage: GroupConsumer BOOTSTRAP TOPIC GROUP PROTOCOL [name=value ...]
 */
public class GroupConsumer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = args[2], protocol = args[3];
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("group.id", group);
        props.put("group.protocol", protocol);
        props.put("client.id", group);
        props.put("auto.offset.reset", "earliest");
        props.put("enable.auto.commit", "true");
        props.put("auto.commit.interval.ms", "1000");
        props.put("key.deserializer", StringDeserializer.class.getName());
        props.put("value.deserializer", StringDeserializer.class.getName());
        Harness.addProps(props, args, 4);
        PrintStream out = Harness.out();
        AtomicBoolean stop = Harness.stopOnStdinClose();

        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                public void onPartitionsAssigned(Collection<TopicPartition> ps) {
                    out.println("ASSIGNED " + System.currentTimeMillis() + " " + ps);
                }

                public void onPartitionsRevoked(Collection<TopicPartition> ps) {
                    out.println("REVOKED " + System.currentTimeMillis() + " " + ps);
                }

                public void onPartitionsLost(Collection<TopicPartition> ps) {
                    out.println("LOST " + System.currentTimeMillis() + " " + ps);
                }
            });
            while (!stop.get()) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    out.println("REC " + r.partition() + " " + r.offset() + " " + r.value() + " " + System.currentTimeMillis());
                }
            }
        }
        out.println("DONE");
    }
}
