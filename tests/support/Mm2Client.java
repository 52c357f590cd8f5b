// Apache MM2's own client code (connect-mirror-client from Maven Central) reading what kafka-mirrord
// wrote on the target cluster. Run with the single-file source launcher:
//   java -cp "<mm2-libs>/*:<kafka-libs>/*" Mm2Client.java BOOTSTRAP translate GROUP SOURCE_ALIAS
//   java -cp ... Mm2Client.java BOOTSTRAP upstream
// `translate` prints "topic partition offset" lines (RemoteClusterUtils.translateOffsets);
// `upstream` prints the upstream cluster aliases, then "hops <alias> <n>" (MirrorClient).
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.connect.mirror.MirrorClient;
import org.apache.kafka.connect.mirror.RemoteClusterUtils;

public class Mm2Client {
    public static void main(String[] args) throws Exception {
        Map<String, Object> props = new HashMap<>();
        props.put("bootstrap.servers", args[0]);
        if (args[1].equals("translate")) {
            Map<TopicPartition, OffsetAndMetadata> offsets =
                RemoteClusterUtils.translateOffsets(props, args[3], args[2], Duration.ofSeconds(60));
            TreeMap<String, Long> sorted = new TreeMap<>();
            offsets.forEach((tp, om) -> sorted.put(tp.topic() + " " + tp.partition(), om.offset()));
            sorted.forEach((tp, offset) -> System.out.println(tp + " " + offset));
        } else {
            try (MirrorClient client = new MirrorClient(props)) {
                for (String alias : client.upstreamClusters()) {
                    System.out.println(alias);
                    System.out.println("hops " + alias + " " + client.replicationHops(alias));
                }
            }
        }
    }
}
