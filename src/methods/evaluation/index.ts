/**
 * Evaluation with explanations, on any LanguageModelBackend: LLM-as-a-judge with its biases
 * measured, arena rankings with confidence intervals, ChainPoll hallucination scores, selection
 * bias and PriDe for multiple-choice answers, and the faithfulness of a model's self-explanations.
 *
 * @module
 */
export {
  judgeSingle, judgePairwise, planSingle, planPairwise, judgeSingleItems, judgePairItems, finishSingle, finishPairwise, asksPerItem,
} from './judge.js';
export type {
  EvalQuestion, ModelAnswer, JudgeOptions, ScoreJudgment, HumanScore, SingleReport, PairJudgment, PairOutcome, Battle, HumanPairLabel, PairwiseReport,
  JudgePlan, SinglePlan, PairwisePlan, SingleItem, PairItem, JudgedRecord, FinishOptions,
} from './judge.js';
export { judgeAnalysis, judgeJob, judgeJobContext, openJobRunner, runnerShards, writeRecordShard, readRecordShards } from './judge-job.js';
export type { JudgeJobContext, JudgeMergeTarget, RunnerShards } from './judge-job.js';
export { TEMPLATES, resolveTemplate, checkTemplate, renderTemplate, transcript, parseScore, parsePair, critiqueAgrees } from './templates.js';
export type { JudgeTemplate, TemplateKind, ScoreVerdict, PairVerdict, Parsed } from './templates.js';
export { JudgeRunner, addUsage, NO_USAGE } from './runner.js';
export type { RunnerOptions, JudgeReply, JudgeSampling, RunUsage } from './runner.js';
export { EvalStore, requestKey } from './store.js';
export type { StoredVerdict, StoredRun } from './store.js';
export { arena, bradleyTerry, onlineElo, expectedWinRate, battlesFromRows, checkBattles, fitLogStrengths } from './arena.js';
export type { ArenaOptions, ArenaEntry, ArenaReport } from './arena.js';
export { chainPoll, chainPollPrompt, parseYesNo, planChainPoll, pollItems, finishChainPoll } from './chainpoll.js';
export type { ChainPollItem, ChainPollOptions, Poll, ChainPollResult, ChainPollReport, ChainPollPlan, PolledRecord, ChainPollFinishOptions } from './chainpoll.js';
export { chainPollAnalysis, chainPollJob, chainPollJobContext } from './chainpoll-job.js';
export type { ChainPollJobContext, ChainPollMergeTarget } from './chainpoll-job.js';
export { pride, mcqPrompt, mcqFromRows } from './mcq.js';
export type { McqQuestion, McqOptions, SelectionStats, McqReport } from './mcq.js';
export {
  selfExplain, compareWithAttribution, readLabel, redactWords, claimedWords, normWord, SENTIMENT_TASK, SELF_EXPLANATION_KINDS,
} from './selfexplain.js';
export type { ClassificationTask, SelfExplainOptions, SelfExplanationCheck, SelfExplainReport, SelfExplanationKind, ClaimComparison } from './selfexplain.js';
export { SAMPLE_DATA, loadQuestions, loadAnswers, loadBattles, loadHumanLabels, loadMcq, loadCompletions } from './data.js';
export { agreement, spearman, pearsonOrNull, ranks } from './stats.js';
