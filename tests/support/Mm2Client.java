// Apache MM2's own client code (connect-mirror-client from Maven Central) reading what kafka-mirrord
// wrote on the target cluster. Run with the single-file source launcher:
//   java -cp "<mm2-libs>/*:<kafka-libs>/*" Mm2Client.java BOOTSTRAP translate GROUP SOURCE_ALIAS
//   java -cp ... Mm2Client.java BOOTSTRAP upstream
// `translate` prints "topic partition offset" lines (RemoteClusterUtils.translateOffsets);
// `upstream` prints the upstream cluster aliases, then "hops <alias> <n>" (MirrorClient).
// The Java admin client also stands as the independent witness for topic ACLs:
//   java -cp ... Mm2Client.java BOOTSTRAP create-acl|delete-acl [TOPIC LITERAL|PREFIXED PRINCIPAL OPERATION ALLOW|DENY]...
//   java -cp ... Mm2Client.java BOOTSTRAP acls      (prints "topic pattern principal host operation permission")
// and to delete a group's committed offsets (kafka-consumer-groups --delete-offsets):
//   java -cp ... Mm2Client.java BOOTSTRAP delete-offsets GROUP TOPIC PARTITION...
// and for header keys as Java clients read them (UTF-8 strings, NUL bytes included):
//   java -cp ... Mm2Client.java BOOTSTRAP header-keys TOPIC PARTITION   (one line per record: hex keys)
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Map;
import java.util.List;
import java.util.TreeMap;
import java.util.TreeSet;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;
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
        } else if (args[1].equals("create-acl") || args[1].equals("delete-acl")) {
            List<AclBinding> bindings = new ArrayList<>();
            for (int i = 2; i + 4 < args.length; i += 5) {
                ResourcePattern pattern = new ResourcePattern(ResourceType.TOPIC, args[i], PatternType.valueOf(args[i + 1]));
                bindings.add(new AclBinding(pattern, new AccessControlEntry(args[i + 2], "*",
                    AclOperation.valueOf(args[i + 3]), AclPermissionType.valueOf(args[i + 4]))));
            }
            try (Admin admin = Admin.create(props)) {
                if (args[1].equals("create-acl")) {
                    admin.createAcls(bindings).all().get();
                } else {
                    List<AclBindingFilter> filters = new ArrayList<>();
                    bindings.forEach(binding -> filters.add(binding.toFilter()));
                    admin.deleteAcls(filters).all().get();
                }
            }
        } else if (args[1].equals("delete-offsets")) {
            java.util.Set<TopicPartition> partitions = new java.util.HashSet<>();
            for (int i = 4; i < args.length; i++) {
                partitions.add(new TopicPartition(args[3], Integer.parseInt(args[i])));
            }
            try (Admin admin = Admin.create(props)) {
                admin.deleteConsumerGroupOffsets(args[2], partitions).all().get();
            }
        } else if (args[1].equals("header-keys")) {
            props.put("key.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
            props.put("value.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
            try (org.apache.kafka.clients.consumer.KafkaConsumer<byte[], byte[]> consumer =
                     new org.apache.kafka.clients.consumer.KafkaConsumer<>(props)) {
                TopicPartition tp = new TopicPartition(args[2], Integer.parseInt(args[3]));
                consumer.assign(List.of(tp));
                consumer.seekToBeginning(List.of(tp));
                long end = consumer.endOffsets(List.of(tp)).get(tp);
                while (consumer.position(tp) < end) {
                    for (org.apache.kafka.clients.consumer.ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofSeconds(1))) {
                        List<String> keys = new ArrayList<>();
                        for (org.apache.kafka.common.header.Header header : record.headers()) {
                            StringBuilder hex = new StringBuilder();
                            for (byte b : header.key().getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
                                hex.append(String.format("%02x", b));
                            }
                            keys.add(hex.toString());
                        }
                        System.out.println(String.join(",", keys));
                    }
                }
            }
        } else if (args[1].equals("acls")) {
            try (Admin admin = Admin.create(props)) {
                AclBindingFilter any = new AclBindingFilter(
                    new ResourcePatternFilter(ResourceType.TOPIC, null, PatternType.ANY), AccessControlEntryFilter.ANY);
                TreeSet<String> lines = new TreeSet<>();
                for (AclBinding binding : admin.describeAcls(any).values().get()) {
                    lines.add(String.join(" ", binding.pattern().name(), binding.pattern().patternType().name(),
                        binding.entry().principal(), binding.entry().host(), binding.entry().operation().name(),
                        binding.entry().permissionType().name()));
                }
                lines.forEach(System.out::println);
            }
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
