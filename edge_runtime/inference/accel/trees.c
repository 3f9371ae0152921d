/*
 * mlops_edge.trees: an onnxruntime custom operator library that evaluates an XGBoost tree ensemble
 * as perfect binary trees, branch-free.
 *
 * Why: onnxruntime's TreeEnsemble kernel walks each tree with data-dependent branches and spends
 * ~12 us on a 300-tree depth-6 model. Here every tree is padded (at export, pipeline/ml/
 * perfect_trees.py) to the perfect tree of its own depth D, stored in heap order (root at 1), so
 * one row costs exactly D steps per tree of  g = 2*g + (x[f[g]] < t[g])  with no branch to
 * mispredict, and eight consecutive trees are walked together (padded to the deepest of them) so
 * their independent chains of loads overlap. After D steps, g - 2^D is the leaf.
 *
 * Missing values: XGBoost sends a row left ("yes") when x < threshold and a missing value (NaN) to
 * the node's default child. Bit 31 of a node's feature attribute says the default is "yes"; the
 * comparison alone sends NaN to "no" (every comparison with NaN is false), so
 *   yes = (x < t) | (x != x & default_yes),
 * and a row without any NaN skips the second half.
 * Infinities need nothing: they compare like any number, as they do in XGBoost and onnxruntime.
 *
 * Ops (domain "mlops_edge.trees"):
 *   PerfectTreeEnsembleRegressor(X float[N,F]) -> variable float[N,1]
 *   PerfectTreeEnsembleClassifier(X float[N,F]) -> label int64[N], probabilities float[N,K]
 * Attributes: n_features, n_targets, post_transform (0 none, 1 logistic over one margin giving
 * [1-p, p], 2 softmax), base_values float[n_targets] (the margin every row starts from),
 * tree_depths int[T], tree_targets int[T], node_features int[sum 2^D-1] (bit 31: missing goes yes),
 * node_thresholds float[sum 2^D-1], leaf_values float[sum 2^D]; trees in the booster's order
 * (margins are summed in float in that order, from the base, as XGBoost sums them), each tree's
 * nodes in heap order 1..2^D-1 and leaves 0..2^D-1.
 *
 * Batches go tree-major over blocks of 64 rows: on x86-64 CPUs with AVX-512 (checked at run time)
 * sixteen rows walk a chunk of depth 4-6 at once, one per vector lane; otherwise two NaN-free rows
 * go through a chunk at once. A single NaN-free row walks two chunks at once: sixteen independent
 * walks in flight either way.
 *
 * One file over 400 lines (the Python house limit) on purpose: devices compile this single source
 * with their own C compiler and onnxruntime loads the one library it makes.
 *
 * The onnxruntime C API, declared here: no package registry serves onnxruntime_c_api.h (checked:
 * PyPI wheels ship only the shared library, Debian has no onnxruntime package), so this file
 * declares the subset it uses itself, from onnxruntime_c_api.h of the 1.13 API (ORT_API_VERSION
 * 13; the members and their order as that header declares them, no text of it copied):
 *   - OrtApiBase: { GetApi(uint32_t version), GetVersionString() }.
 *   - OrtApi: a table of function pointers that only ever grows at its end, so a member's
 *     position is stable across releases; ORT_SLOT_* below are the 0-based positions of the
 *     members this file calls, counted in the header's declaration order.
 *   - OrtCustomOp: the struct as of version 13 (members in header order, see struct below).
 * The library asks the runtime for API version 13 (any runtime >= 1.13 serves it) and reports it
 * through mlops_edge_trees_api_version(). tests/unit/engine/test_accel.py loads the library
 * into the pinned onnxruntime, checks parity on all three tasks, and fails when the pinned
 * onnxruntime changes without these declarations being re-checked (CHECKED_ORT_VERSIONS in
 * edge_runtime/inference/accel/__init__.py).
 */

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MLOPS_TREES_API_VERSION 13u
#define MLOPS_TREES_MAX_DEPTH 10
#define MLOPS_TREES_BLOCK 8
#define MLOPS_TREES_MAX_FEATURES 65536 /* a node's feature index is 16 bits */
#define ROW_BLOCK 64

/* ---- the declared subset of onnxruntime_c_api.h -------------------------------------------- */

typedef struct OrtStatus OrtStatus;
typedef struct OrtValue OrtValue;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtCustomOpDomain OrtCustomOpDomain;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtKernelInfo OrtKernelInfo;
typedef struct OrtKernelContext OrtKernelContext;

/* enum ONNXTensorElementDataType: FLOAT = 1, INT64 = 7 */
enum { ORT_TYPE_FLOAT = 1, ORT_TYPE_INT64 = 7 };

/* struct OrtApi: opaque here; members are reached by their position in the table. */
typedef void (*OrtAnyFn)(void); /* every member is a function pointer; cast to its own type to call */
typedef struct OrtApi {
    OrtAnyFn slots[1];
} OrtApi;

typedef struct OrtApiBase {
    const OrtApi *(*GetApi)(uint32_t version);
    const char *(*GetVersionString)(void);
} OrtApiBase;

/* 0-based positions in struct OrtApi (onnxruntime_c_api.h, declaration order). */
#define ORT_SLOT_CreateCustomOpDomain 26
#define ORT_SLOT_CustomOpDomain_Add 27
#define ORT_SLOT_AddCustomOpDomain 28
#define ORT_SLOT_GetTensorMutableData 51
#define ORT_SLOT_GetDimensionsCount 61
#define ORT_SLOT_GetDimensions 62
#define ORT_SLOT_GetTensorTypeAndShape 65
#define ORT_SLOT_KernelInfoGetAttribute_int64 86
#define ORT_SLOT_KernelContext_GetInput 90
#define ORT_SLOT_KernelContext_GetOutput 91
#define ORT_SLOT_ReleaseTensorTypeAndShapeInfo 99
#define ORT_SLOT_KernelInfoGetAttributeArray_float 162
#define ORT_SLOT_KernelInfoGetAttributeArray_int64 163

typedef OrtStatus *(*CreateCustomOpDomain_fn)(const char *domain, OrtCustomOpDomain **out);
typedef OrtStatus *(*CustomOpDomain_Add_fn)(OrtCustomOpDomain *domain, const void *op);
typedef OrtStatus *(*AddCustomOpDomain_fn)(OrtSessionOptions *options, OrtCustomOpDomain *domain);
typedef OrtStatus *(*GetTensorMutableData_fn)(OrtValue *value, void **out);
typedef OrtStatus *(*GetDimensionsCount_fn)(const OrtTensorTypeAndShapeInfo *info, size_t *out);
typedef OrtStatus *(*GetDimensions_fn)(const OrtTensorTypeAndShapeInfo *info, int64_t *dims, size_t n);
typedef OrtStatus *(*GetTensorTypeAndShape_fn)(const OrtValue *value, OrtTensorTypeAndShapeInfo **out);
typedef OrtStatus *(*KernelInfoGetAttribute_int64_fn)(const OrtKernelInfo *info, const char *name,
                                                        int64_t *out);
typedef OrtStatus *(*KernelContext_GetInput_fn)(const OrtKernelContext *ctx, size_t index,
                                                  const OrtValue **out);
typedef OrtStatus *(*KernelContext_GetOutput_fn)(OrtKernelContext *ctx, size_t index, const int64_t *dims,
                                                   size_t n_dims, OrtValue **out);
typedef void (*ReleaseTensorTypeAndShapeInfo_fn)(OrtTensorTypeAndShapeInfo *info);
typedef OrtStatus *(*KernelInfoGetAttributeArray_float_fn)(const OrtKernelInfo *info, const char *name,
                                                             float *out, size_t *size);
typedef OrtStatus *(*KernelInfoGetAttributeArray_int64_fn)(const OrtKernelInfo *info, const char *name,
                                                             int64_t *out, size_t *size);

#define ORT(api, name) ((name##_fn)((api)->slots[ORT_SLOT_##name]))

/* struct OrtCustomOp as of version 13: members in the header's order. */
typedef struct OrtCustomOp {
    uint32_t version;
    void *(*CreateKernel)(const struct OrtCustomOp *op, const OrtApi *api, const OrtKernelInfo *info);
    const char *(*GetName)(const struct OrtCustomOp *op);
    const char *(*GetExecutionProviderType)(const struct OrtCustomOp *op);
    int (*GetInputType)(const struct OrtCustomOp *op, size_t index);
    size_t (*GetInputTypeCount)(const struct OrtCustomOp *op);
    int (*GetOutputType)(const struct OrtCustomOp *op, size_t index);
    size_t (*GetOutputTypeCount)(const struct OrtCustomOp *op);
    void (*KernelCompute)(void *kernel, OrtKernelContext *context);
    void (*KernelDestroy)(void *kernel);
    int (*GetInputCharacteristic)(const struct OrtCustomOp *op, size_t index);
    int (*GetOutputCharacteristic)(const struct OrtCustomOp *op, size_t index);
    int (*GetInputMemoryType)(const struct OrtCustomOp *op, size_t index);
} OrtCustomOp;

/* ---- the model ------------------------------------------------------------------------------ */

typedef struct {
    float threshold;
    uint16_t feature;
    uint16_t missing_yes; /* 1: a missing value (NaN) goes "yes" */
} Node;

/* Up to MLOPS_TREES_BLOCK consecutive trees, each padded to the deepest one's depth D, so they are
 * walked together; chunks keep the booster's tree order, so every margin is summed in XGBoost's
 * order and precision (float, tree by tree from the base margin) and matches it to the last bit
 * far more often than a reordered sum would. */
typedef struct {
    int depth;
    int count;
    const Node *nodes;    /* count blocks of 2^D nodes, heap order; node 0 of each block unused */
    const float *leaves;  /* count blocks of 2^D leaves */
    const float *thresholds; /* the nodes' thresholds and feature words (feature | missing_yes << 16) */
    const int32_t *features; /* apart, as the 16-row vector walk loads them (NULL: no vector walk) */
    int32_t targets[MLOPS_TREES_BLOCK];
} Chunk;

typedef struct {
    const OrtApi *api;
    int64_t n_features, n_targets, post_transform;
    size_t n_chunks;
    Chunk *chunks;
    float *base;
    void *storage; /* one block holding every chunk's nodes and leaves */
    void *vector_storage; /* the vector walk's tables (NULL without AVX-512) */
    int valid;
} Kernel;

static int read_floats(const OrtApi *api, const OrtKernelInfo *info, const char *name, float **out, size_t *n) {
    *n = 0;
    if (ORT(api, KernelInfoGetAttributeArray_float)(info, name, NULL, n) != NULL) return 0;
    *out = malloc((*n ? *n : 1) * sizeof(float));
    return *out && ORT(api, KernelInfoGetAttributeArray_float)(info, name, *out, n) == NULL;
}

static int read_ints(const OrtApi *api, const OrtKernelInfo *info, const char *name, int64_t **out, size_t *n) {
    *n = 0;
    if (ORT(api, KernelInfoGetAttributeArray_int64)(info, name, NULL, n) != NULL) return 0;
    *out = malloc((*n ? *n : 1) * sizeof(int64_t));
    return *out && ORT(api, KernelInfoGetAttributeArray_int64)(info, name, *out, n) == NULL;
}

/* Copy tree t (depth d, nodes/leaves as in the attributes) into a chunk slot of depth D >= d. The
 * heap numbering does not depend on the depth, so nodes 1..2^d-1 keep their places; the levels
 * below d get inert nodes, and each leaf is copied to the 2^(D-d) leaves under its position. */
static void place_tree(Node *nodes, float *leaves, int D, int d, const int64_t *feats, const float *thr,
                       const float *tree_leaves) {
    const size_t width = (size_t)1 << D, own = (size_t)1 << d, span = width / own;
    memset(nodes, 0, width * sizeof(Node));
    for (size_t i = 1; i < own; i++) {
        nodes[i].threshold = thr[i - 1];
        nodes[i].feature = (uint16_t)(feats[i - 1] & 0x7fffffff);
        nodes[i].missing_yes = (uint16_t)((uint64_t)feats[i - 1] >> 31);
    }
    for (size_t i = 0; i < own; i++)
        for (size_t j = 0; j < span; j++) leaves[i * span + j] = tree_leaves[i];
}

/* Lay the trees out as chunks in one aligned block; 0 if the attributes do not describe a model. */
static int build_chunks(Kernel *k, const int64_t *depths, const int64_t *targets, size_t n_trees,
                        const int64_t *feats, size_t n_nodes, const float *thr, size_t n_thr,
                        const float *leaves, size_t n_leaves) {
    size_t need_nodes = 0, need_leaves = 0, padded = 0;
    for (size_t t = 0; t < n_trees; t++) {
        if (depths[t] < 0 || depths[t] > MLOPS_TREES_MAX_DEPTH) return 0;
        if (targets[t] < 0 || targets[t] >= k->n_targets) return 0;
        need_nodes += ((size_t)1 << depths[t]) - 1;
        need_leaves += (size_t)1 << depths[t];
    }
    if (need_nodes != n_nodes || need_nodes != n_thr || need_leaves != n_leaves) return 0;
    for (size_t i = 0; i < n_nodes; i++) {
        if (feats[i] < 0 || feats[i] > 0xffffffffLL || (feats[i] & 0x7fffffff) >= k->n_features) return 0;
    }
    k->n_chunks = (n_trees + MLOPS_TREES_BLOCK - 1) / MLOPS_TREES_BLOCK;
    k->chunks = calloc(k->n_chunks ? k->n_chunks : 1, sizeof(Chunk));
    if (!k->chunks) return 0;
    for (size_t c = 0; c < k->n_chunks; c++) {
        Chunk *ch = &k->chunks[c];
        ch->count = (int)(n_trees - c * MLOPS_TREES_BLOCK < MLOPS_TREES_BLOCK ? n_trees - c * MLOPS_TREES_BLOCK
                                                                                : MLOPS_TREES_BLOCK);
        for (int j = 0; j < ch->count; j++) {
            const int64_t d = depths[c * MLOPS_TREES_BLOCK + j];
            ch->depth = d > ch->depth ? (int)d : ch->depth;
        }
        padded += (size_t)ch->count << ch->depth;
    }
    const size_t bytes = padded * (sizeof(Node) + sizeof(float));
    k->storage = aligned_alloc(64, (bytes + 64) / 64 * 64);
    if (!k->storage) return 0;
    Node *node_out = k->storage;
    float *leaf_out = (float *)(node_out + padded);
    size_t node_in = 0, leaf_in = 0;
    for (size_t c = 0; c < k->n_chunks; c++) {
        Chunk *ch = &k->chunks[c];
        const size_t width = (size_t)1 << ch->depth;
        ch->nodes = node_out, ch->leaves = leaf_out;
        for (int j = 0; j < ch->count; j++) {
            const size_t t = c * MLOPS_TREES_BLOCK + (size_t)j, own = (size_t)1 << depths[t];
            place_tree(node_out, leaf_out, ch->depth, (int)depths[t], feats + node_in, thr + node_in,
                       leaves + leaf_in);
            ch->targets[j] = (int32_t)targets[t];
            node_out += width, leaf_out += width, node_in += own - 1, leaf_in += own;
        }
    }
    return 1;
}

/* ---- the 16-row vector walk (x86-64 with AVX-512, chosen at run time) --------------------------
 * A batch's rows walk one tree the same way, so sixteen rows go down it at once, one per lane:
 * a depth-6 tree's 63 thresholds and feature words sit in four registers each, so a level is two
 * in-register permutes (node g of each lane; g < 16 for levels 0-3, g mod 16 at level 4, g mod 32
 * over two registers at level 5), the rows' values, two compares and an add. The rows are
 * transposed once per block (xt: a feature's sixteen values in one register), so levels 0-3, with
 * one to eight nodes, load their nodes' feature rows whole and blend them by the bits of g; only
 * levels 4-5 gather (a gather costs several blends: 840k -> 1.8M rows/s on the 300-tree binary
 * model). The margins are still summed per row in tree order (same floats, same order as the
 * scalar walk: single rows and batches agree to the bit). Chunks of depth 4-6 with eight trees
 * take it (XGBoost's default depth is 6); others, and a batch's last rows short of sixteen, walk
 * as before. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(MLOPS_TREES_NO_VECTOR)
#include <immintrin.h>
#define VECTOR_WALK 1
#define VECTOR_ROWS 16
#define VECTOR_TARGET __attribute__((target("avx512f")))

/* The value of each lane's row at feature word f (xt: sixteen rows transposed, xt[f*16 + lane]). */
#define LANE_VALUES(f) _mm512_i32gather_ps(_mm512_add_epi32(_mm512_slli_epi32(_mm512_and_si512((f), low16), 4), lane), xt, 4)
/* One row-vector of xt: a feature every lane reads (a level's node feature F[i], known per tree). */
#define XT_ROW(F, i) _mm512_load_ps(xt + (size_t)((F)[i] & 0xffff) * VECTOR_ROWS)

static inline __attribute__((always_inline)) VECTOR_TARGET void walk16_depth(
    const Chunk *ch, const float *xt, float *acc, int64_t K, const int d) {
    const int w = 1 << d;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2), low16 = _mm512_set1_epi32(0xffff);
    const __m512i missing_yes = _mm512_set1_epi32(0x10000);
    __m512i g[MLOPS_TREES_BLOCK];
    for (int j = 0; j < MLOPS_TREES_BLOCK; j++) g[j] = one;
    for (int level = 0; level < d; level++) {
        for (int j = 0; j < MLOPS_TREES_BLOCK; j++) {
            const float *T = ch->thresholds + j * w;
            const int32_t *F = ch->features + j * w;
            __m512 t, v;
            __m512i f;
            if (level < 4) {
                t = _mm512_permutexvar_ps(g[j], _mm512_loadu_ps(T));
                f = _mm512_permutexvar_epi32(g[j], _mm512_loadu_si512(F));
            } else if (level == 4) {
                t = _mm512_permutexvar_ps(g[j], _mm512_loadu_ps(T + 16));
                f = _mm512_permutexvar_epi32(g[j], _mm512_loadu_si512(F + 16));
            } else {
                t = _mm512_permutex2var_ps(_mm512_loadu_ps(T + 32), g[j], _mm512_loadu_ps(T + 48));
                f = _mm512_permutex2var_epi32(_mm512_loadu_si512(F + 32), g[j], _mm512_loadu_si512(F + 48));
            }
            /* The top levels have one to four nodes: their features' rows of xt are loaded whole and
             * each lane picks its node's (bits of g); a gather (the slow part) only from level 3. */
            if (level == 0) {
                v = XT_ROW(F, 1);
            } else if (level == 1) {
                v = _mm512_mask_blend_ps(_mm512_test_epi32_mask(g[j], one), XT_ROW(F, 2), XT_ROW(F, 3));
            } else if (level == 2) {
                const __mmask16 odd = _mm512_test_epi32_mask(g[j], one), high = _mm512_test_epi32_mask(g[j], two);
                v = _mm512_mask_blend_ps(high, _mm512_mask_blend_ps(odd, XT_ROW(F, 4), XT_ROW(F, 5)),
                                         _mm512_mask_blend_ps(odd, XT_ROW(F, 6), XT_ROW(F, 7)));
            } else if (level == 3) {
                const __mmask16 odd = _mm512_test_epi32_mask(g[j], one), high = _mm512_test_epi32_mask(g[j], two);
                const __mmask16 top = _mm512_test_epi32_mask(g[j], _mm512_set1_epi32(4));
                const __m512 lo = _mm512_mask_blend_ps(high, _mm512_mask_blend_ps(odd, XT_ROW(F, 8), XT_ROW(F, 9)),
                                                       _mm512_mask_blend_ps(odd, XT_ROW(F, 10), XT_ROW(F, 11)));
                const __m512 hi = _mm512_mask_blend_ps(high, _mm512_mask_blend_ps(odd, XT_ROW(F, 12), XT_ROW(F, 13)),
                                                       _mm512_mask_blend_ps(odd, XT_ROW(F, 14), XT_ROW(F, 15)));
                v = _mm512_mask_blend_ps(top, lo, hi);
            } else {
                v = LANE_VALUES(f);
            }
            /* as STEP: x < threshold, or x missing (NaN) where the node sends missing "yes" */
            const __mmask16 yes = _mm512_cmp_ps_mask(v, t, _CMP_LT_OQ) |
                                  (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_test_epi32_mask(f, missing_yes));
            const __m512i twice = _mm512_add_epi32(g[j], g[j]);
            g[j] = _mm512_mask_add_epi32(twice, yes, twice, one);
        }
    }
    const __m512i at_row = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)K));
    for (int j = 0; j < MLOPS_TREES_BLOCK; j++) { /* in tree order, as the scalar walk adds them */
        const __m512 leaf = _mm512_i32gather_ps(_mm512_sub_epi32(g[j], _mm512_set1_epi32(w)), ch->leaves + j * w, 4);
        if (K == 1) {
            _mm512_storeu_ps(acc, _mm512_add_ps(_mm512_loadu_ps(acc), leaf));
        } else {
            const __m512i at = _mm512_add_epi32(at_row, _mm512_set1_epi32(ch->targets[j]));
            _mm512_i32scatter_ps(acc, at, _mm512_add_ps(_mm512_i32gather_ps(at, acc, 4), leaf), 4);
        }
    }
}

/* Sixteen rows (transposed in xt) through one full chunk of depth 4-6, margins into acc[r*K + t]. */
static VECTOR_TARGET void walk16(const Chunk *ch, const float *xt, float *acc, int64_t K) {
    switch (ch->depth) {
        case 4: walk16_depth(ch, xt, acc, K, 4); return;
        case 5: walk16_depth(ch, xt, acc, K, 5); return;
        case 6: walk16_depth(ch, xt, acc, K, 6); return;
        default: return;
    }
}

/* The vector walk's tables, when this CPU has AVX-512: each full chunk of depth 4-6 gets its nodes'
 * thresholds and feature words as two arrays (the scalar walks keep the interleaved Node). */
static void build_vector_tables(Kernel *k) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) return;
    size_t padded = 0;
    for (size_t c = 0; c < k->n_chunks; c++) padded += (size_t)k->chunks[c].count << k->chunks[c].depth;
    k->vector_storage = aligned_alloc(64, (padded * 8 + 64) / 64 * 64);
    if (!k->vector_storage) return; /* the scalar walks still answer */
    float *thr = k->vector_storage;
    int32_t *feat = (int32_t *)(thr + padded);
    for (size_t c = 0; c < k->n_chunks; c++) {
        Chunk *ch = &k->chunks[c];
        const size_t n = (size_t)ch->count << ch->depth;
        for (size_t i = 0; i < n; i++) {
            thr[i] = ch->nodes[i].threshold;
            feat[i] = (int32_t)ch->nodes[i].feature | (int32_t)ch->nodes[i].missing_yes << 16;
        }
        if (ch->count == MLOPS_TREES_BLOCK && ch->depth >= 4 && ch->depth <= 6)
            ch->thresholds = thr, ch->features = feat;
        thr += n, feat += n;
    }
}
#else
#define VECTOR_WALK 0
#define VECTOR_ROWS 16
static void walk16(const Chunk *ch, const float *xt, float *acc, int64_t K) {
    (void)ch, (void)xt, (void)acc, (void)K;
}
static void build_vector_tables(Kernel *k) { (void)k; }
#endif

static void *create_kernel(const OrtCustomOp *op, const OrtApi *api, const OrtKernelInfo *info) {
    (void)op;
    Kernel *k = calloc(1, sizeof(Kernel));
    if (!k) return NULL;
    k->api = api;
    int64_t *depths = NULL, *targets = NULL, *feats = NULL;
    float *thr = NULL, *leaves = NULL;
    size_t n_depths, n_targets, n_feats, n_thr, n_leaves, n_base;
    int ok = ORT(api, KernelInfoGetAttribute_int64)(info, "n_features", &k->n_features) == NULL &&
             ORT(api, KernelInfoGetAttribute_int64)(info, "n_targets", &k->n_targets) == NULL &&
             ORT(api, KernelInfoGetAttribute_int64)(info, "post_transform", &k->post_transform) == NULL &&
             k->n_features > 0 && k->n_features <= MLOPS_TREES_MAX_FEATURES && k->n_targets > 0 &&
             k->n_targets <= 4096 &&
             k->post_transform >= 0 && k->post_transform <= 2 &&
             read_floats(api, info, "base_values", &k->base, &n_base) && n_base == (size_t)k->n_targets &&
             read_ints(api, info, "tree_depths", &depths, &n_depths) &&
             read_ints(api, info, "tree_targets", &targets, &n_targets) && n_targets == n_depths &&
             read_ints(api, info, "node_features", &feats, &n_feats) &&
             read_floats(api, info, "node_thresholds", &thr, &n_thr) &&
             read_floats(api, info, "leaf_values", &leaves, &n_leaves) &&
             !(k->post_transform == 1 && k->n_targets != 1) &&
             build_chunks(k, depths, targets, n_depths, feats, n_feats, thr, n_thr, leaves, n_leaves);
    k->valid = ok;
    if (ok) build_vector_tables(k);
    free(depths), free(targets), free(feats), free(thr), free(leaves);
    return k;
}

static void destroy_kernel(void *kernel) {
    Kernel *k = kernel;
    if (!k) return;
    free(k->storage);
    free(k->vector_storage);
    free(k->chunks);
    free(k->base);
    free(k);
}

/* One tree step: "yes" when x < threshold, or when x is missing and the node says missing goes
 * "yes". A row without NaN skips the second test (with_missing is a constant where it is inlined). */
#define STEP(n, v, with_missing) \
    ((uint32_t)((v) < (n).threshold) | ((with_missing) ? (uint32_t)(((v) != (v)) & (n).missing_yes) : 0u))

/* Leaves of one full chunk for one row: its MLOPS_TREES_BLOCK trees walked together. Inlined with
 * a constant depth d (walk_any below), so each tree's offset j * 2^d is an immediate and the eight
 * walks' indices all stay in registers. */
static inline __attribute__((always_inline)) void walk_chunk(const Chunk *ch, const float *restrict row,
                                                             float *restrict out, const int with_missing,
                                                             const int d) {
    const size_t w = (size_t)1 << d;
    const Node *nodes = ch->nodes;
    uint32_t g[MLOPS_TREES_BLOCK];
    for (int j = 0; j < MLOPS_TREES_BLOCK; j++) g[j] = 1;
    for (int level = 0; level < d; level++) {
        for (int j = 0; j < MLOPS_TREES_BLOCK; j++) {
            const Node n = nodes[j * w + g[j]];
            const float v = row[n.feature];
            g[j] = 2 * g[j] + STEP(n, v, with_missing);
        }
    }
    for (int j = 0; j < MLOPS_TREES_BLOCK; j++) out[ch->targets[j]] += ch->leaves[j * w + g[j] - w];
}

/* Two full chunks of depth d, each for a row without NaN, walked at once: sixteen independent
 * walks keep twice as many loads in flight as eight. A batch pairs two rows on one chunk; a single
 * row pairs two consecutive chunks (a == b). Leaves each tree's node index after d levels in
 * ga / gb (its leaf is g - 2^d); the callers add the leaves, chunk a's first, in tree order. */
static inline __attribute__((always_inline)) void walk2_levels(const Chunk *ca, const Chunk *cb,
                                                               const float *restrict a, const float *restrict b,
                                                               uint32_t *restrict ga, uint32_t *restrict gb,
                                                               const int d) {
    const size_t w = (size_t)1 << d;
    const Node *nodes_a = ca->nodes, *nodes_b = cb->nodes;
    for (int j = 0; j < MLOPS_TREES_BLOCK; j++) ga[j] = 1, gb[j] = 1;
    for (int level = 0; level < d; level++) {
        for (int j = 0; j < MLOPS_TREES_BLOCK; j++) {
            const Node na = nodes_a[j * w + ga[j]], nb = nodes_b[j * w + gb[j]];
            ga[j] = 2 * ga[j] + (uint32_t)(a[na.feature] < na.threshold);
            gb[j] = 2 * gb[j] + (uint32_t)(b[nb.feature] < nb.threshold);
        }
    }
}

/* walk2_levels, the leaves added through out_a / out_b (the same for one row of a multi-target
 * model: a's leaves are added first, in order). */
static inline __attribute__((always_inline)) void walk_chunk2(const Chunk *ca, const Chunk *cb,
                                                              const float *restrict a, const float *restrict b,
                                                              float *out_a, float *out_b, const int d) {
    const size_t w = (size_t)1 << d;
    uint32_t ga[MLOPS_TREES_BLOCK], gb[MLOPS_TREES_BLOCK];
    walk2_levels(ca, cb, a, b, ga, gb, d);
    for (int j = 0; j < MLOPS_TREES_BLOCK; j++) out_a[ca->targets[j]] += ca->leaves[j * w + ga[j] - w];
    for (int j = 0; j < MLOPS_TREES_BLOCK; j++) out_b[cb->targets[j]] += cb->leaves[j * w + gb[j] - w];
}

#define WALK2_DEPTH(D) \
    case D:               \
        walk_chunk2(ca, cb, a, b, out_a, out_b, D); \
        return;

static void walk_pair(const Chunk *ca, const Chunk *cb, const float *restrict a, const float *restrict b,
                      float *out_a, float *out_b) {
    switch (ca->depth) {
        WALK2_DEPTH(0) WALK2_DEPTH(1) WALK2_DEPTH(2) WALK2_DEPTH(3) WALK2_DEPTH(4) WALK2_DEPTH(5)
        WALK2_DEPTH(6) WALK2_DEPTH(7) WALK2_DEPTH(8) WALK2_DEPTH(9) WALK2_DEPTH(10)
        default:
            return;
    }
}

/* One row of a one-target model (regression, binary) on two full chunks of depth d: walk2_levels,
 * then the sixteen leaves are summed in a register, in tree order, and returned. Added
 * through acc[target] in memory (walk_pair with out_a == out_b), the row's 300 leaf additions were
 * one chain of store-to-load forwards, as long as the walk itself (issue 15 §3). */
static inline __attribute__((always_inline)) float walk_chunk2_one(const Chunk *ca, const Chunk *cb,
                                                                   const float *restrict x, float total,
                                                                   const int d) {
    const size_t w = (size_t)1 << d;
    uint32_t ga[MLOPS_TREES_BLOCK], gb[MLOPS_TREES_BLOCK];
    walk2_levels(ca, cb, x, x, ga, gb, d);
    for (int j = 0; j < MLOPS_TREES_BLOCK; j++) total += ca->leaves[j * w + ga[j] - w];
    for (int j = 0; j < MLOPS_TREES_BLOCK; j++) total += cb->leaves[j * w + gb[j] - w];
    return total;
}

#define WALK1_DEPTH(D) \
    case D:               \
        return walk_chunk2_one(ca, cb, x, total, D);

/* Never inlined: inlined into compute (as the compiler chose), the sixteen walks shared the
 * registers with compute's own values and more of them spilled to the stack; a function of its
 * own walks a binary row's 300 trees ~0.4 us faster (~1.5 -> ~1.1 us), whatever its 19 calls cost. */
static __attribute__((noinline)) float walk_pair_one(const Chunk *ca, const Chunk *cb, const float *restrict x,
                                                     float total) {
    switch (ca->depth) {
        WALK1_DEPTH(0) WALK1_DEPTH(1) WALK1_DEPTH(2) WALK1_DEPTH(3) WALK1_DEPTH(4) WALK1_DEPTH(5)
        WALK1_DEPTH(6) WALK1_DEPTH(7) WALK1_DEPTH(8) WALK1_DEPTH(9) WALK1_DEPTH(10)
        default:
            return total;
    }
}

#define WALK_DEPTH(D) \
    case D:              \
        walk_chunk(ch, row, out, with_missing, D); \
        return;

static inline __attribute__((always_inline)) void walk_any(const Chunk *ch, const float *restrict row,
                                                           float *restrict out, const int with_missing) {
    switch (ch->depth) {
        WALK_DEPTH(0) WALK_DEPTH(1) WALK_DEPTH(2) WALK_DEPTH(3) WALK_DEPTH(4) WALK_DEPTH(5)
        WALK_DEPTH(6) WALK_DEPTH(7) WALK_DEPTH(8) WALK_DEPTH(9) WALK_DEPTH(10)
        default:
            return;
    }
}

/* Margins of `rows` rows (x row r at x + r*stride) into acc[r*K + target], every tree added in
 * order. Tree-major over the block of rows: a chunk's nodes stay in L1 while every row walks it,
 * and its trees' chains of loads are independent, so they overlap. */
static void block_margins(const Kernel *k, const float *restrict x, int64_t stride, int rows,
                          float *restrict acc, float *restrict xt) {
    const int64_t K = k->n_targets, F = k->n_features;
    /* The vector walk reads each group of sixteen rows transposed: xt[(group*F + f)*16 + lane]. */
    const int vector_rows = VECTOR_WALK && xt ? rows / VECTOR_ROWS * VECTOR_ROWS : 0;
    for (int r = 0; r < vector_rows; r++)
        for (int64_t f = 0; f < F; f++)
            xt[((r / VECTOR_ROWS) * F + f) * VECTOR_ROWS + r % VECTOR_ROWS] = x[r * stride + f];
    unsigned char missing[ROW_BLOCK];
    for (int r = 0; r < rows; r++) {
        unsigned char any = 0;
        for (int64_t f = 0; f < k->n_features; f++) any |= x[r * stride + f] != x[r * stride + f];
        missing[r] = any;
    }
    for (size_t c = 0; c < k->n_chunks; c++) {
        const Chunk *ch = &k->chunks[c];
        const Chunk *next = c + 1 < k->n_chunks ? ch + 1 : NULL;
        if (rows == 1 && !missing[0] && ch->count == MLOPS_TREES_BLOCK && next &&
            next->count == MLOPS_TREES_BLOCK && next->depth == ch->depth) {
            if (K == 1)
                acc[0] = walk_pair_one(ch, next, x, acc[0]);
            else
                walk_pair(ch, next, x, x, acc, acc);
            c++;
            continue;
        }
        if (ch->count == MLOPS_TREES_BLOCK) {
            int r = 0;
            if (ch->features)
                for (; r < vector_rows; r += VECTOR_ROWS) walk16(ch, xt + r * F, acc + r * K, K);
            for (; r + 1 < rows; r += 2) {
                if (missing[r] | missing[r + 1]) {
                    walk_any(ch, x + r * stride, acc + r * K, missing[r]);
                    walk_any(ch, x + (r + 1) * stride, acc + (r + 1) * K, missing[r + 1]);
                } else {
                    walk_pair(ch, ch, x + r * stride, x + (r + 1) * stride, acc + r * K, acc + (r + 1) * K);
                }
            }
            for (; r < rows; r++) {
                if (missing[r])
                    walk_any(ch, x + r * stride, acc + r * K, 1);
                else
                    walk_any(ch, x + r * stride, acc + r * K, 0);
            }
            continue;
        }
        const size_t w = (size_t)1 << ch->depth;
        for (int r = 0; r < rows; r++) {
            const float *row = x + r * stride;
            for (int j = 0; j < ch->count; j++) {
                uint32_t g = 1;
                for (int level = 0; level < ch->depth; level++) {
                    const Node n = ch->nodes[j * w + g];
                    const float v = row[n.feature];
                    g = 2 * g + STEP(n, v, 1);
                }
                acc[r * K + ch->targets[j]] += ch->leaves[j * w + g - w];
            }
        }
    }
}

/* Outputs of one row from its margins (acc is scratch: softmax overwrites it). */
static void finish_row(const Kernel *k, float *acc, float *out, int64_t *label) {
    const int64_t K = k->n_targets;
    int64_t width = K;
    if (k->post_transform == 0) {
        for (int64_t c = 0; c < K; c++) out[c] = acc[c];
    } else if (k->post_transform == 1) {
        const float p = (float)(1.0 / (1.0 + exp(-acc[0])));
        out[0] = 1.0f - p, out[1] = p, width = 2;
    } else {
        double top = acc[0], sum = 0.0, e[16];
        for (int64_t c = 1; c < K; c++) top = acc[c] > top ? acc[c] : top;
        if (K <= 16) { /* each exp once: they are a tenth of a 4-class row */
            for (int64_t c = 0; c < K; c++) sum += (e[c] = exp((double)acc[c] - top));
            for (int64_t c = 0; c < K; c++) out[c] = (float)(e[c] / sum);
        } else {
            for (int64_t c = 0; c < K; c++) sum += exp((double)acc[c] - top);
            for (int64_t c = 0; c < K; c++) out[c] = (float)(exp((double)acc[c] - top) / sum);
        }
    }
    if (label) {
        int64_t best = 0;
        for (int64_t c = 1; c < width; c++) best = out[c] > out[best] ? c : best;
        *label = best;
    }
}

static void compute(void *kernel, OrtKernelContext *ctx, int classifier) {
    Kernel *k = kernel;
    const OrtApi *api = k->api;
    const OrtValue *input = NULL;
    OrtTensorTypeAndShapeInfo *shape = NULL;
    int64_t dims[2] = {0, 0};
    size_t n_dims = 0;
    if (ORT(api, KernelContext_GetInput)(ctx, 0, &input) != NULL || !input) return;
    if (ORT(api, GetTensorTypeAndShape)(input, &shape) != NULL) return;
    int shape_ok = ORT(api, GetDimensionsCount)(shape, &n_dims) == NULL && n_dims == 2 &&
                   ORT(api, GetDimensions)(shape, dims, 2) == NULL;
    ORT(api, ReleaseTensorTypeAndShapeInfo)(shape);
    if (!shape_ok) return;
    const int64_t n = dims[0], K = k->n_targets, width = k->post_transform == 1 ? 2 : K;
    const float *x = NULL;
    if (ORT(api, GetTensorMutableData)((OrtValue *)input, (void **)&x) != NULL) return;
    OrtValue *out_label = NULL, *out_values = NULL;
    int64_t *labels = NULL;
    float *values = NULL;
    int64_t label_dims[1] = {n}, value_dims[2] = {n, classifier ? width : 1};
    if (classifier) {
        if (ORT(api, KernelContext_GetOutput)(ctx, 0, label_dims, 1, &out_label) != NULL) return;
        if (ORT(api, GetTensorMutableData)(out_label, (void **)&labels) != NULL) return;
    }
    if (ORT(api, KernelContext_GetOutput)(ctx, classifier ? 1 : 0, value_dims, 2, &out_values) != NULL) return;
    if (ORT(api, GetTensorMutableData)(out_values, (void **)&values) != NULL) return;
    /* A kernel whose attributes were refused, or input of the wrong width, answers NaN: the
       parity gate and the engine's own checks catch it before any answer leaves the device. */
    const int64_t per_row = classifier ? width : 1;
    const int block = n < ROW_BLOCK ? (int)n : ROW_BLOCK;
    float acc_small[16];
    float *acc = (int64_t)block * K <= 16 ? acc_small : malloc((size_t)block * (size_t)K * sizeof(float));
    /* the vector walk's transposed rows (none for fewer than sixteen rows; NULL: the scalar walks) */
    float *xt = k->vector_storage && n >= VECTOR_ROWS && dims[1] == k->n_features
                    ? aligned_alloc(64, (size_t)ROW_BLOCK * (size_t)k->n_features * sizeof(float))
                    : NULL;
    if (!k->valid || dims[1] != k->n_features || !acc) {
        for (int64_t i = 0; i < n * per_row; i++) values[i] = NAN;
        for (int64_t r = 0; classifier && r < n; r++) labels[r] = 0;
    } else {
        for (int64_t r0 = 0; r0 < n; r0 += block) {
            const int rows = n - r0 < block ? (int)(n - r0) : block;
            for (int64_t i = 0; i < (int64_t)rows * K; i++) acc[i] = k->base[i % K];
            block_margins(k, x + r0 * dims[1], dims[1], rows, acc, xt);
            for (int r = 0; r < rows; r++)
                finish_row(k, acc + r * K, values + (r0 + r) * per_row, classifier ? labels + r0 + r : NULL);
        }
    }
    if (acc != acc_small) free(acc);
    free(xt);
}

static void compute_regressor(void *kernel, OrtKernelContext *ctx) { compute(kernel, ctx, 0); }
static void compute_classifier(void *kernel, OrtKernelContext *ctx) { compute(kernel, ctx, 1); }

static const char *name_regressor(const OrtCustomOp *op) { (void)op; return "PerfectTreeEnsembleRegressor"; }
static const char *name_classifier(const OrtCustomOp *op) { (void)op; return "PerfectTreeEnsembleClassifier"; }
static const char *provider(const OrtCustomOp *op) { (void)op; return NULL; }
static int input_type(const OrtCustomOp *op, size_t i) { (void)op, (void)i; return ORT_TYPE_FLOAT; }
static size_t one(const OrtCustomOp *op) { (void)op; return 1; }
static size_t two(const OrtCustomOp *op) { (void)op; return 2; }
static int regressor_output_type(const OrtCustomOp *op, size_t i) { (void)op, (void)i; return ORT_TYPE_FLOAT; }
static int classifier_output_type(const OrtCustomOp *op, size_t i) {
    (void)op;
    return i == 0 ? ORT_TYPE_INT64 : ORT_TYPE_FLOAT;
}
static int required(const OrtCustomOp *op, size_t i) { (void)op, (void)i; return 0; }
static int memory_default(const OrtCustomOp *op, size_t i) { (void)op, (void)i; return 0; }

static const OrtCustomOp REGRESSOR = {
    MLOPS_TREES_API_VERSION, create_kernel, name_regressor, provider, input_type, one,
    regressor_output_type, one, compute_regressor, destroy_kernel, required, required, memory_default,
};
static const OrtCustomOp CLASSIFIER = {
    MLOPS_TREES_API_VERSION, create_kernel, name_classifier, provider, input_type, one,
    classifier_output_type, two, compute_classifier, destroy_kernel, required, required, memory_default,
};

/* The API version these declarations were written for (the ABI test compares it). */
uint32_t mlops_edge_trees_api_version(void) { return MLOPS_TREES_API_VERSION; }

/* onnxruntime's entry point for SessionOptions.register_custom_ops_library. */
OrtStatus *RegisterCustomOps(OrtSessionOptions *options, const OrtApiBase *base) {
    const OrtApi *api = base->GetApi(MLOPS_TREES_API_VERSION);
    if (!api) return NULL; /* cannot even report: a runtime older than 1.13 has no such table */
    OrtCustomOpDomain *domain = NULL;
    OrtStatus *status = ORT(api, CreateCustomOpDomain)("mlops_edge.trees", &domain);
    if (status) return status;
    if ((status = ORT(api, CustomOpDomain_Add)(domain, &REGRESSOR))) return status;
    if ((status = ORT(api, CustomOpDomain_Add)(domain, &CLASSIFIER))) return status;
    /* The domain must outlive every session made with these options; it is a few bytes, kept. */
    return ORT(api, AddCustomOpDomain)(options, domain);
}
