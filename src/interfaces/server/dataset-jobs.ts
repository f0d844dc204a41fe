/**
 * The Workbench's view of dataset-scale jobs (lantern activations and other commands that run as
 * jobs, in-process or on worker processes), read from the jobs folder:
 *
 *   GET /api/dataset-jobs       every job with its shards done, failed and its state
 *   GET /api/dataset-jobs/{id}  one job: its spec and each finished or failed shard
 *
 * The folder is the record (workers on other machines write to it too), so progress shows here
 * whichever process runs the shards.
 */
import type { FastifyPluginAsync } from 'fastify';
import { LanternError } from '../../errors.js';
import { jobIds, jobStatus } from '../../engine/jobs/store.js';

/** Routes listing the jobs in `dir`. */
export const datasetJobsRoutes: FastifyPluginAsync<{ dir: string }> = async (app, { dir }) => {
  app.get('/api/dataset-jobs', async () => ({
    dir,
    jobs: jobIds(dir).map((id) => {
      const s = jobStatus(dir, id);
      return { id, analysis: s.job.analysis, model: s.job.model.source, dataset: s.job.dataset, shards: s.job.shards.length, done: s.done.length, failed: s.failed.length, state: s.state };
    }),
  }));
  app.get<{ Params: { id: string } }>('/api/dataset-jobs/:id', async (req, reply) => {
    try {
      return jobStatus(dir, req.params.id);
    } catch (e) {
      if (e instanceof LanternError) return reply.code(404).send({ error: e.message });
      throw e;
    }
  });
};
