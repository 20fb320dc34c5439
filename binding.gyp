{
  "targets": [
    {
      "target_name": "udp_batch",
      "sources": ["dns/wire/native/udp_batch.c"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["dns/wire/native/udp_batch.c"] }]
      ]
    },
    {
      "target_name": "pinger_sock",
      "sources": ["slb-agent/pinger/native/pinger_sock.c"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["slb-agent/pinger/native/pinger_sock.c"] }]
      ]
    },
    {
      "target_name": "reuseport_sock",
      "sources": ["slb-agent/forwarder/proxy/native/reuseport_sock.c"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["slb-agent/forwarder/proxy/native/reuseport_sock.c"] }]
      ]
    }
  ]
}
