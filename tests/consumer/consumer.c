/*
 * An application of the installed facl, built by test_consumer.sh with CMake
 * (find_package(facl)) and with pkg-config. It runs one tiny forward on the default
 * device and checks the result: every row of v is the same, so every output row must
 * equal it whatever the attention weights (out starts as NaN, so an unwritten output
 * fails too). It also checks that the library it runs is the one its header describes.
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <facl.h>

#include <math.h>
#include <stdio.h>

enum { S = 5, H = 2, D = 8, N = S * H * D };

static int fail(const char *what, facl_status st)
{
    fprintf(stderr, "consumer: %s: %s: %s\n", what, facl_status_string(st), facl_last_error());
    return 1;
}

int main(void)
{
    if (facl_version_number() != FACL_VERSION_NUMBER) {
        fprintf(stderr, "consumer: header %s, library %s\n", FACL_VERSION_STRING,
                facl_version_string());
        return 1;
    }
    facl_context *ctx;
    facl_status st = facl_context_create(NULL, &ctx);
    if (st != FACL_SUCCESS) return fail("facl_context_create", st);

    float q[N], k[N], v[N], out[N];
    for (int i = 0; i < N; ++i) {
        q[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
        k[i] = (float)((i * 5) % 13) / 13.0f - 0.5f;
        v[i] = (float)(i % (H * D)); /* the same for every position s */
        out[i] = NAN;
    }
    cl_context cl = facl_context_cl_context(ctx);
    cl_mem_flags fl = CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR;
    cl_int e[4];
    cl_mem mq = clCreateBuffer(cl, fl, sizeof q, q, &e[0]);
    cl_mem mk = clCreateBuffer(cl, fl, sizeof k, k, &e[1]);
    cl_mem mv = clCreateBuffer(cl, fl, sizeof v, v, &e[2]);
    cl_mem mo = clCreateBuffer(cl, fl, sizeof out, out, &e[3]);
    for (int i = 0; i < 4; ++i)
        if (e[i] != CL_SUCCESS) return fail("clCreateBuffer", (facl_status)e[i]);

    int64_t shape[4] = {1, S, H, D};
    facl_tensor tq = facl_tensor_contiguous(mq, FACL_DTYPE_F32, 4, shape);
    facl_tensor tk = facl_tensor_contiguous(mk, FACL_DTYPE_F32, 4, shape);
    facl_tensor tv = facl_tensor_contiguous(mv, FACL_DTYPE_F32, 4, shape);
    facl_tensor to = facl_tensor_contiguous(mo, FACL_DTYPE_F32, 4, shape);
    facl_attn_options opts = FACL_ATTN_OPTIONS_INIT;
    opts.causal = 1;
    cl_event done;
    st = facl_fwd(ctx, NULL, &tq, &tk, &tv, &to, NULL, &opts, 0, NULL, &done);
    if (st != FACL_SUCCESS) return fail("facl_fwd", st);
    cl_int rc = clEnqueueReadBuffer(facl_context_queue(ctx), mo, CL_TRUE, 0, sizeof out, out,
                                    1, &done, NULL);
    if (rc != CL_SUCCESS) return fail("clEnqueueReadBuffer", (facl_status)rc);

    int bad = 0;
    for (int i = 0; i < N; ++i)
        if (!(fabsf(out[i] - v[i]) <= 1e-4f * (1.0f + fabsf(v[i])))) {
            if (bad++ < 5) fprintf(stderr, "consumer: out[%d] = %g, want %g\n", i, out[i], v[i]);
        }
    clReleaseEvent(done);
    clReleaseMemObject(mq);
    clReleaseMemObject(mk);
    clReleaseMemObject(mv);
    clReleaseMemObject(mo);
    facl_context_free(ctx);
    if (bad) return 1;
    printf("consumer: facl %s, facl_fwd ok\n", facl_version_string());
    return 0;
}
