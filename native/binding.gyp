{
  "targets": [
    {
      "target_name": "lazybd_io",
      "sources": ["lazybd_io.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
