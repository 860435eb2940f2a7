/*
 * lazybd_io: the Linux file calls Node does not expose, and chunk hashing off the main thread
 * (lib/store/native-io.ts loads it).
 *
 *   dataRegions(fd, offset, limit, max) -> Promise<number[]>         up to max data regions [start, end) at or
 *                                   after offset and starting below limit, flat [s0, e0, s1, e1, ...];
 *                                   lseek SEEK_DATA, then SEEK_HOLE, in one thread-pool job
 *   punchHole(fd, offset, length)   -> Promise<void>                 fallocate(PUNCH_HOLE | KEEP_SIZE)
 *   setSendBuffer(fd, bytes)        -> number                        setsockopt SO_SNDBUF; the size in effect
 *   readNoWait(fd, buf, at, length, position) -> number              preadv2(RWF_NOWAIT): bytes read,
 *                                                                    or -1 when it would block (or cannot be nowait)
 *   sha256Chunks(buf, chunkSize)    -> Promise<Buffer>               SHA-256 of each whole chunk of buf,
 *                                                                    32 bytes each, on the thread pool
 *   writeBatch(fd, buffers, positions, checksums, errors) -> Promise<void>
 *                                   pwrite of each buffer at its position (Float64Array), all in one
 *                                   thread-pool job; errors[i] (Int32Array) = errno or 0; when checksums
 *                                   (Uint32Array) has one slot per buffer, checksums[i] = the first 4 bytes
 *                                   of SHA-256 of buffers[i] as u32 LE (the upper's record checksum)
 *
 * lseek and fallocate may wait on the disk and SHA-256 takes CPU, so they run on libuv's thread pool
 * (napi async work).
 * sha256Chunks lets create hash chunks on a pool thread while the main thread hashes the blob, without
 * the copy WebCrypto makes (the caller keeps buf unchanged until the promise settles); it uses the
 * OpenSSL that Node itself links and exports.
 * writeBatch exists because each thread-pool hand-off costs far more than a buffered 4 KiB pwrite (a contended
 * queue lock and two wake-ups against ~3 us): many writes share one hand-off, and their checksums leave the
 * main thread too. Buffered writes cannot be RWF_NOWAIT on ext4 (EOPNOTSUPP), so they never run on the caller.
 * readNoWait runs on the calling thread by design: RWF_NOWAIT makes the kernel answer from the page
 * cache or refuse with EAGAIN, never wait, so a hit costs one syscall and no thread hand-off.
 * Errors reject or throw like Node's fs errors: message "CODE: strerror, syscall", .code, .errno, .syscall.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>
#include <node_api.h>
#include <openssl/evp.h>
#include <uv.h>

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

#define CHECK(env, call)                                          \
  do {                                                            \
    if ((call) != napi_ok) {                                      \
      napi_throw_error((env), "E_NATIVE_IO", "N-API call failed"); \
      return NULL;                                                \
    }                                                             \
  } while (0)

static napi_value errno_error(napi_env env, int err, const char *syscall) {
  char message[256];
  const char *name = uv_err_name(uv_translate_sys_error(err));
  snprintf(message, sizeof message, "%s: %s, %s", name, strerror(err), syscall);
  napi_value code, msg, error, errno_value, syscall_value;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, -err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  return error;
}

/* A non-negative integer that fits a file offset exactly (JS numbers are exact below 2^53). */
static int is_offset(double d) {
  return d >= 0 && d <= 9007199254740991.0 && d == (double)(int64_t)d;
}

static int get_offset(napi_env env, napi_value value, const char *what, int64_t *out) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok || !is_offset(d)) {
    char message[96];
    snprintf(message, sizeof message, "%s must be a non-negative safe integer", what);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return 0;
  }
  *out = (int64_t)d;
  return 1;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "missing arguments");
    return 0;
  }
  return 1;
}

/* ---- async work shared by dataRegions, punchHole, sha256Chunks and writeBatch ---- */

typedef enum { OP_DATA_REGIONS, OP_PUNCH_HOLE, OP_SHA256, OP_WRITE_BATCH } op_kind;

typedef struct {
  op_kind kind;
  int fd;
  int64_t offset, length;
  /* OP_SHA256: the input (held by a reference until done), its chunk size and count, the digests */
  napi_ref input;
  const unsigned char *bytes;
  size_t chunk, count;
  unsigned char *digests;
  /* OP_WRITE_BATCH: count buffers (pointers and lengths), positions, and the caller's checksum and error
     arrays, all held by references until done */
  napi_ref batch_refs[4];
  const unsigned char **buffers;
  size_t *lengths;
  const double *positions;
  uint32_t *checksums;
  int32_t *errors;
  /* results */
  int err;
  const char *syscall;
  /* OP_DATA_REGIONS: offset, limit (in length), up to count regions found into regions[2 * found] */
  int64_t *regions;
  size_t found;
  napi_deferred deferred;
  napi_async_work work;
} op_t;

/* pwrite all of it; errno or 0. */
static int write_fully(int fd, const unsigned char *bytes, size_t length, int64_t position) {
  size_t done = 0;
  while (done < length) {
    ssize_t n = pwrite(fd, bytes + done, length - done, position + (int64_t)done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += (size_t)n;
  }
  return 0;
}

static void write_batch_execute(op_t *op) {
  unsigned char digest[32];
  for (size_t i = 0; i < op->count; i++) {
    op->errors[i] = write_fully(op->fd, op->buffers[i], op->lengths[i], (int64_t)op->positions[i]);
    if (op->checksums && EVP_Digest(op->buffers[i], op->lengths[i], digest, NULL, EVP_sha256(), NULL) == 1)
      op->checksums[i] = (uint32_t)digest[0] | (uint32_t)digest[1] << 8 | (uint32_t)digest[2] << 16 | (uint32_t)digest[3] << 24;
    else if (op->checksums && op->errors[i] == 0)
      op->errors[i] = EINVAL;
  }
}

static void op_execute(napi_env env, void *data) {
  (void)env;
  op_t *op = data;
  if (op->kind == OP_WRITE_BATCH) {
    write_batch_execute(op);
    return;
  }
  if (op->kind == OP_SHA256) {
    for (size_t i = 0; i < op->count; i++)
      if (EVP_Digest(op->bytes + i * op->chunk, op->chunk, op->digests + i * 32, NULL, EVP_sha256(), NULL) != 1) {
        op->err = EINVAL;
        op->syscall = "EVP_Digest";
        return;
      }
    return;
  }
  if (op->kind == OP_PUNCH_HOLE) {
    if (fallocate(op->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, op->offset, op->length) != 0) {
      op->err = errno;
      op->syscall = "fallocate";
    }
    return;
  }
  for (off_t at = op->offset; op->found < op->count && at < op->length;) {
    off_t start = lseek(op->fd, at, SEEK_DATA);
    if (start < 0) {
      /* ENXIO: no data at or after `at` (or `at` is at or past the end). */
      if (errno != ENXIO) {
        op->err = errno;
        op->syscall = "lseek";
      }
      return;
    }
    if (start >= op->length) return;
    off_t end = lseek(op->fd, start, SEEK_HOLE);
    if (end < 0) {
      op->err = errno;
      op->syscall = "lseek";
      return;
    }
    op->regions[2 * op->found] = start;
    op->regions[2 * op->found + 1] = end;
    op->found++;
    at = end;
  }
}

static void free_op(napi_env env, op_t *op) {
  if (op->input) napi_delete_reference(env, op->input);
  for (size_t i = 0; i < 4; i++)
    if (op->batch_refs[i]) napi_delete_reference(env, op->batch_refs[i]);
  free(op->digests);
  free(op->regions);
  free(op->buffers);
  free(op->lengths);
  free(op);
}

static void op_complete(napi_env env, napi_status status, void *data) {
  op_t *op = data;
  napi_value result;
  if (status != napi_ok) {
    napi_value msg;
    napi_create_string_utf8(env, "native file operation cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &result);
    napi_reject_deferred(env, op->deferred, result);
  } else if (op->err) {
    napi_reject_deferred(env, op->deferred, errno_error(env, op->err, op->syscall));
  } else {
    if (op->kind == OP_SHA256) {
      void *copy;
      napi_create_buffer_copy(env, op->count * 32, op->digests, &copy, &result);
    } else if (op->kind == OP_DATA_REGIONS) {
      napi_create_array_with_length(env, 2 * op->found, &result);
      for (size_t i = 0; i < 2 * op->found; i++) {
        napi_value v;
        napi_create_int64(env, op->regions[i], &v);
        napi_set_element(env, result, (uint32_t)i, v);
      }
    } else {
      napi_get_undefined(env, &result);
    }
    napi_resolve_deferred(env, op->deferred, result);
  }
  napi_delete_async_work(env, op->work);
  free_op(env, op);
}

/* Drops an op that never reached the pool; throws `message` under `code` unless an exception is already pending (code NULL). */
static napi_value abandon_op(napi_env env, op_t *op, const char *code, const char *message) {
  free_op(env, op);
  if (code) napi_throw_error(env, code, message);
  return NULL;
}

static op_t *new_op(napi_env env, op_kind kind) {
  op_t *op = calloc(1, sizeof *op);
  if (!op) napi_throw_error(env, "ENOMEM", "out of memory");
  else op->kind = kind;
  return op;
}

/* Queues an operation on the thread pool (taking it over); its promise settles in op_complete. */
static napi_value start_op(napi_env env, op_t *op) {
  napi_value promise, name;
  if (napi_create_promise(env, &op->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "lazybd_io", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, op_execute, op_complete, op, &op->work) != napi_ok ||
      napi_queue_async_work(env, op->work) != napi_ok) {
    return abandon_op(env, op, "E_NATIVE_IO", "could not queue native file operation");
  }
  return promise;
}

static napi_value data_regions(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t fd;
  int64_t offset, limit, max;
  if (!get_args(env, info, 4, argv)) return NULL;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  if (!get_offset(env, argv[1], "offset", &offset) || !get_offset(env, argv[2], "limit", &limit) || !get_offset(env, argv[3], "max", &max)) return NULL;
  if (max < 1 || max > 1 << 20) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "max must be 1..2^20 regions");
    return NULL;
  }
  op_t *op = new_op(env, OP_DATA_REGIONS);
  if (!op) return NULL;
  op->fd = fd;
  op->offset = offset;
  op->length = limit;
  op->count = (size_t)max;
  op->regions = malloc((size_t)max * 2 * sizeof *op->regions);
  if (!op->regions) return abandon_op(env, op, "ENOMEM", "out of memory");
  return start_op(env, op);
}

static napi_value punch_hole(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  int64_t offset, length;
  if (!get_args(env, info, 3, argv)) return NULL;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  if (!get_offset(env, argv[1], "offset", &offset) || !get_offset(env, argv[2], "length", &length)) return NULL;
  op_t *op = new_op(env, OP_PUNCH_HOLE);
  if (!op) return NULL;
  op->fd = fd;
  op->offset = offset;
  op->length = length;
  return start_op(env, op);
}

static napi_value sha256_chunks(napi_env env, napi_callback_info info) {
  napi_value argv[2], arraybuffer;
  napi_typedarray_type type;
  size_t length, byte_offset;
  void *data;
  int64_t chunk;
  if (!get_args(env, info, 2, argv)) return NULL;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, &arraybuffer, &byte_offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "buffer must be a Uint8Array");
    return NULL;
  }
  if (!get_offset(env, argv[1], "chunkSize", &chunk)) return NULL;
  if (chunk <= 0 || length % (size_t)chunk != 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "buffer must be whole chunks");
    return NULL;
  }
  op_t *op = new_op(env, OP_SHA256);
  if (!op) return NULL;
  op->bytes = data;
  op->chunk = (size_t)chunk;
  op->count = length / (size_t)chunk;
  op->digests = malloc(op->count * 32 + 1);
  if (!op->digests || napi_create_reference(env, argv[0], 1, &op->input) != napi_ok) return abandon_op(env, op, "ENOMEM", "out of memory");
  return start_op(env, op);
}

/* The data pointer and element count of a typed array of the given type; 0 (with a TypeError thrown) otherwise. */
static int get_typed(napi_env env, napi_value value, napi_typedarray_type want, const char *what, void **data, size_t *count) {
  napi_typedarray_type type;
  size_t byte_offset;
  napi_value arraybuffer;
  if (napi_get_typedarray_info(env, value, &type, count, data, &arraybuffer, &byte_offset) != napi_ok || type != want) {
    char message[96];
    snprintf(message, sizeof message, "%s has the wrong type", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return 0;
  }
  return 1;
}

static napi_value write_batch(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t fd;
  uint32_t count;
  void *positions, *checksums, *errors;
  size_t n_positions, n_checksums, n_errors;
  bool is_array;
  if (!get_args(env, info, 5, argv)) return NULL;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "buffers must be an array");
    return NULL;
  }
  CHECK(env, napi_get_array_length(env, argv[1], &count));
  if (!get_typed(env, argv[2], napi_float64_array, "positions", &positions, &n_positions) ||
      !get_typed(env, argv[3], napi_uint32_array, "checksums", &checksums, &n_checksums) ||
      !get_typed(env, argv[4], napi_int32_array, "errors", &errors, &n_errors))
    return NULL;
  if (n_positions != count || n_errors != count || (n_checksums != 0 && n_checksums != count)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "positions and errors need one slot per buffer, checksums one or none");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++)
    if (!is_offset(((const double *)positions)[i])) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "positions must be non-negative safe integers");
      return NULL;
    }
  op_t *op = new_op(env, OP_WRITE_BATCH);
  if (!op) return NULL;
  op->fd = fd;
  op->count = count;
  op->positions = positions;
  op->checksums = n_checksums ? checksums : NULL;
  op->errors = errors;
  op->buffers = calloc(count + 1, sizeof *op->buffers);
  op->lengths = calloc(count + 1, sizeof *op->lengths);
  if (!op->buffers || !op->lengths) return abandon_op(env, op, "ENOMEM", "out of memory");
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    void *bytes;
    if (napi_get_element(env, argv[1], i, &item) != napi_ok || !get_typed(env, item, napi_uint8_array, "each buffer", &bytes, &op->lengths[i]))
      return abandon_op(env, op, NULL, NULL);
    op->buffers[i] = bytes;
  }
  for (size_t i = 0; i < 4; i++)
    if (napi_create_reference(env, argv[i + 1], 1, &op->batch_refs[i]) != napi_ok) return abandon_op(env, op, "E_NATIVE_IO", "N-API call failed");
  return start_op(env, op);
}

static napi_value set_send_buffer(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  int32_t fd, bytes;
  if (!get_args(env, info, 2, argv)) return NULL;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  CHECK(env, napi_get_value_int32(env, argv[1], &bytes));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) != 0) {
    napi_throw(env, errno_error(env, errno, "setsockopt"));
    return NULL;
  }
  int now = 0;
  socklen_t len = sizeof now;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &now, &len) != 0) {
    napi_throw(env, errno_error(env, errno, "getsockopt"));
    return NULL;
  }
  CHECK(env, napi_create_int32(env, now, &result));
  return result;
}

static napi_value read_no_wait(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t fd;
  int64_t at, length, position;
  napi_typedarray_type type;
  size_t count, byte_offset;
  void *data;
  napi_value arraybuffer, result;
  if (!get_args(env, info, 5, argv)) return NULL;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  if (napi_get_typedarray_info(env, argv[1], &type, &count, &data, &arraybuffer, &byte_offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "buffer must be a Uint8Array");
    return NULL;
  }
  if (!get_offset(env, argv[2], "at", &at) || !get_offset(env, argv[3], "length", &length) || !get_offset(env, argv[4], "position", &position)) return NULL;
  if ((uint64_t)at + (uint64_t)length > count) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "at + length is past the end of the buffer");
    return NULL;
  }
  struct iovec iov = {.iov_base = (char *)data + at, .iov_len = (size_t)length};
  ssize_t n;
  do n = preadv2(fd, &iov, 1, position, RWF_NOWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    /* EAGAIN: not all in the page cache; EOPNOTSUPP: a file system without nowait reads. Either way: the pool. */
    if (errno == EAGAIN || errno == EOPNOTSUPP) {
      CHECK(env, napi_create_int32(env, -1, &result));
      return result;
    }
    napi_throw(env, errno_error(env, errno, "preadv2"));
    return NULL;
  }
  CHECK(env, napi_create_int64(env, n, &result));
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"dataRegions", NULL, data_regions, NULL, NULL, NULL, napi_enumerable, NULL},
      {"punchHole", NULL, punch_hole, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readNoWait", NULL, read_no_wait, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256Chunks", NULL, sha256_chunks, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeBatch", NULL, write_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setSendBuffer", NULL, set_send_buffer, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
