// The Vercel AI SDK's OpenAI-compatible provider as its docs show it, against
// AGENT_API_BASE_URL with AGENT_API_KEY. `node vercel_ai.mjs chat|stream|tools` prints one
// JSON line of results.
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const agentApi = createOpenAICompatible({
  name: "agent-api",
  baseURL: process.env.AGENT_API_BASE_URL,
  apiKey: process.env.AGENT_API_KEY,
});
const model = agentApi("gpt-4o-mini");

async function chat() {
  const { text, finishReason } = await generateText({ model, prompt: "Say hello", maxRetries: 0 });
  return { text, finish_reason: finishReason };
}

async function stream() {
  const result = streamText({ model, prompt: "Tell me a story", maxRetries: 0 });
  let text = "";
  for await (const delta of result.textStream) text += delta;
  return { text, finish_reason: await result.finishReason };
}

async function tools() {
  const { text, steps } = await generateText({
    model,
    maxRetries: 0,
    tools: {
      get_weather: tool({
        description: "The current weather in a city.",
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => ({ city, temp_c: 21, sky: "sunny" }),
      }),
    },
    stopWhen: stepCountIs(3),
    prompt: "What's the weather in Paris?",
  });
  return {
    text,
    steps: steps.map((step) => ({
      finish_reason: step.finishReason,
      tool_calls: step.toolCalls.map((c) => ({ name: c.toolName, input: c.input })),
      tool_results: step.toolResults.map((r) => r.output),
    })),
  };
}

const modes = { chat, stream, tools };
console.log(JSON.stringify(await modes[process.argv[2]]()));
