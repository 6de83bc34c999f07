import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;

/** What the e2e Java clients share: how they take settings and are stopped. */
final class Harness {
    private Harness() {}

    /** Adds the name=value arguments from index first on to props. */
    static void addProps(Properties props, String[] args, int first) {
        for (int i = first; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            props.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
    }

    /**
     * Returns a flag that turns true when standard input closes: the Go
     * test stops a client by closing its stdin, so it can finish cleanly.
     */
    static AtomicBoolean stopOnStdinClose() {
        AtomicBoolean stop = new AtomicBoolean();
        Thread stdin = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                while (r.readLine() != null) {
                }
            } catch (Exception e) {
                // closed
            }
            stop.set(true);
        });
        stdin.setDaemon(true);
        stdin.start();
        return stop;
    }

    /** Standard output, flushed at every line, in UTF-8. */
    static PrintStream out() {
        return new PrintStream(System.out, true, StandardCharsets.UTF_8);
    }
}
