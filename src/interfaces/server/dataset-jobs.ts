/**
 * The Workbench's view of dataset-scale jobs (lantern activations and other commands that run as
 * jobs, in-process or on worker processes), read from the jobs folder:
 *
 *   GET  /api/dataset-jobs             every job with its shards done, failed (and why) and its state
 *   GET  /api/dataset-jobs/{id}        one job: its spec and each finished or failed shard
 *   POST /api/dataset-jobs/{id}/cancel stops a job at its next shard, as `lantern jobs cancel` does, and
 *                                      removes its shards waiting on the queue it was submitted to (recorded
 *                                      in its folder without credentials; the reply's `queue` says what it did)
 *
 * The folder is the record (workers on other machines write to it too), so progress shows here
 * whichever process runs the shards.
 */
import fs from 'node:fs';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { LanternError } from '../../errors.js';
import { cancelJob, jobDir, jobStatus, jobSubject, listJobs, queueFile } from '../../engine/jobs/store.js';

/** When job `id` was first submitted: its folder's creation (job.json is rewritten on every submission). */
function createdAt(dir: string, id: string): string {
  const st = fs.statSync(jobDir(dir, id));
  // Some filesystems keep no creation time (birthtime 0); the folder's last change is the nearest.
  return new Date(st.birthtimeMs > 0 ? st.birthtimeMs : st.mtimeMs).toISOString();
}

/** Routes listing the jobs in `dir`. */
export const datasetJobsRoutes: FastifyPluginAsync<{ dir: string }> = async (app, { dir }) => {
  // An id names a folder in `dir`: one with a path in it (`../…`) never reaches the files outside.
  const notFound = async (reply: FastifyReply, id: string, f: () => unknown) => {
    try {
      if (/[\\/]/.test(id) || id === '..' || id === '.') throw new LanternError(`'${id}' is not a job id (see GET /api/dataset-jobs)`);
      return await f();
    } catch (e) {
      if (e instanceof LanternError) return reply.code(404).send({ error: e.message });
      throw e;
    }
  };
  app.get('/api/dataset-jobs', async () => ({
    dir,
    // A damaged job is listed with what is wrong, so the others still show.
    jobs: listJobs(dir).map(({ id, status: s, error }) => (s ? {
      id, analysis: s.job.analysis, model: jobSubject(s.job), dataset: s.job.dataset, shards: s.job.shards.length, done: s.done.length, failed: s.failed.length, state: s.state,
      createdAt: createdAt(dir, id), failures: s.failed.map(({ shard, range, message }) => ({ shard, range, message })),
    } : { id, state: 'unreadable', error, createdAt: createdAt(dir, id) })),
  }));
  app.get<{ Params: { id: string } }>('/api/dataset-jobs/:id', async (req, reply) => notFound(reply, req.params.id, () => jobStatus(dir, req.params.id)));
  // Cancelling also takes the job's waiting shards off the queue it was submitted to, if any.
  app.post<{ Params: { id: string } }>('/api/dataset-jobs/:id/cancel', async (req, reply) => notFound(reply, req.params.id, async () => {
    const { id } = req.params;
    cancelJob(dir, id);
    const queue = fs.existsSync(queueFile(dir, id)) ? await (await import('../../engine/jobs/queue.js')).dequeueRecorded(dir, id) : undefined;
    return { ...jobStatus(dir, id), ...(queue ? { queue } : {}) };
  }));
};
