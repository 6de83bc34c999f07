import java.io.PrintStream;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Produces the values PREFIX0, PREFIX1, ... (keyed by themselves) at RATE
 * records a second until its standard input closes, with the Java client's
 * idempotent producer and acks=all, and prints one line per outcome:
 *
 *   ACK value partition offset epoch-ms
 *   ERR value epoch-ms exception
 *
 * then "DONE sent" once every send has completed. Usage:
 *   AckedProducer BOOTSTRAP TOPIC PREFIX RATE [name=value ...]
 */
public class AckedProducer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], prefix = args[2];
        int rate = Integer.parseInt(args[3]);
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("acks", "all");
        props.put("enable.idempotence", "true");
        props.put("linger.ms", "5");
        props.put("client.id", prefix + "producer");
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        Harness.addProps(props, args, 4);
        PrintStream out = Harness.out();
        AtomicBoolean stop = Harness.stopOnStdinClose();

        long sent = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            long start = System.nanoTime();
            while (!stop.get()) {
                long due = start + sent * 1_000_000_000L / rate;
                long wait = due - System.nanoTime();
                if (wait > 0) {
                    Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                    continue;
                }
                String value = prefix + sent;
                producer.send(new ProducerRecord<>(topic, value, value), (md, e) -> {
                    if (e == null) {
                        out.println("ACK " + value + " " + md.partition() + " " + md.offset() + " " + System.currentTimeMillis());
                    } else {
                        out.println("ERR " + value + " " + System.currentTimeMillis() + " " + e);
                    }
                });
                sent++;
            }
            producer.flush();
        }
        out.println("DONE " + sent);
    }
}
