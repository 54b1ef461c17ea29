/*
 * Deliberately broken kernels for the Oclgrind suite's self-check: run under
 * tests/oclgrind/run_oclgrind.sh --expect-diagnostic, each must make Oclgrind report,
 * proving that the runner turns a diagnostic into a failure (Oclgrind itself exits 0)
 * and that the checks the suite relies on are switched on.
 *   oclgrind_selfcheck oob       a write one element past the end of a buffer
 *   oclgrind_selfcheck race      two work-items of one group write one local word
 *   oclgrind_selfcheck uninit    a branch on an uninitialised private value
 *   oclgrind_selfcheck barrier   a barrier only half of a work-group reaches
 *   oclgrind_selfcheck api       an OpenCL call with an invalid argument (--check-api)
 *   oclgrind_selfcheck twoctx    oob in a first context, then a correct kernel in a
 *                                second one (whose logger would truncate a log file)
 *   oclgrind_selfcheck clean     a correct kernel (the runner must pass it)
 * The program itself succeeds (exit 0) whenever the OpenCL calls do, as an application
 * would, and prints the platform it ran on.
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <stdio.h>
#include <string.h>

#ifdef __APPLE__
#include <OpenCL/opencl.h>
#else
#include <CL/cl.h>
#endif

static const char *k_source =
    "__kernel void oob(__global int *a) { a[get_global_id(0) + 1] = 1; }\n"
    "__kernel void race(__global int *a) {\n"
    "    __local int s;\n"
    "    s = (int)get_local_id(0);\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    a[get_global_id(0)] = s;\n"
    "}\n"
    "__kernel void uninit(__global int *a) {\n"
    "    int x[4];\n"
    "    if (get_global_id(0) == 99) x[0] = 1;\n"
    "    a[get_global_id(0)] = x[0] > 0 ? 1 : 2;\n"
    "}\n"
    "__kernel void barrier_half(__global int *a) {\n"
    "    if (get_local_id(0) < 2) barrier(CLK_GLOBAL_MEM_FENCE);\n"
    "    a[get_global_id(0)] = 1;\n"
    "}\n"
    "__kernel void clean(__global int *a) { a[get_global_id(0)] = (int)get_global_id(0); }\n";

enum { N = 4 };

#define CHECK(call)                                                                   \
    do {                                                                              \
        cl_int err_ = (call);                                                         \
        if (err_ != CL_SUCCESS) {                                                     \
            fprintf(stderr, "oclgrind_selfcheck: %s failed: %d\n", #call, (int)err_); \
            return 1;                                                                 \
        }                                                                             \
    } while (0)

/* Runs one kernel in a context of its own on N work-items (one group). */
static int run_kernel(cl_device_id device, const char *kernel_name)
{
    cl_context ctx;
    cl_command_queue queue;
    cl_program program;
    cl_kernel kernel;
    cl_mem buf;
    cl_int err;
    const size_t global = N, local = N;
    int host[N];

    ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    CHECK(err);
    queue = clCreateCommandQueue(ctx, device, 0, &err);
    CHECK(err);
    program = clCreateProgramWithSource(ctx, 1, &k_source, NULL, &err);
    CHECK(err);
    CHECK(clBuildProgram(program, 1, &device, "", NULL, NULL));
    kernel = clCreateKernel(program, kernel_name, &err);
    CHECK(err);
    memset(host, 0, sizeof host);
    /* oob writes element N: the buffer holds exactly N */
    buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof host, host, &err);
    CHECK(err);
    CHECK(clSetKernelArg(kernel, 0, sizeof buf, &buf));
    CHECK(clEnqueueNDRangeKernel(queue, kernel, 1, NULL, &global, &local, 0, NULL, NULL));
    CHECK(clEnqueueReadBuffer(queue, buf, CL_TRUE, 0, sizeof host, host, 0, NULL, NULL));
    printf("%s: ran, a[0] = %d\n", kernel_name, host[0]);
    clReleaseMemObject(buf);
    clReleaseKernel(kernel);
    clReleaseProgram(program);
    clReleaseCommandQueue(queue);
    clReleaseContext(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "";
    cl_platform_id platform;
    cl_device_id device;
    char name[256] = "";

    if (strcmp(which, "oob") && strcmp(which, "race") && strcmp(which, "uninit") &&
        strcmp(which, "barrier") && strcmp(which, "api") && strcmp(which, "twoctx") &&
        strcmp(which, "clean")) {
        fprintf(stderr,
                "usage: oclgrind_selfcheck oob|race|uninit|barrier|api|twoctx|clean\n");
        return 2;
    }
    CHECK(clGetPlatformIDs(1, &platform, NULL));
    CHECK(clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof name - 1, name, NULL));
    printf("platform: %s\n", name);
    CHECK(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL));
    if (strcmp(which, "api") == 0) {
        /* an unknown query: the call fails, the application carries on */
        cl_uint value;
        cl_int err = clGetDeviceInfo(device, (cl_device_info)0x7fff, sizeof value, &value, NULL);
        printf("api: clGetDeviceInfo(0x7fff) returned %d\n", (int)err);
        return run_kernel(device, "clean");
    }
    if (strcmp(which, "twoctx") == 0) {
        /* the error in the first context, then a clean second context: Oclgrind's log
         * file is truncated when the second context opens it */
        return run_kernel(device, "oob") || run_kernel(device, "clean");
    }
    return run_kernel(device, strcmp(which, "barrier") == 0 ? "barrier_half" : which);
}
