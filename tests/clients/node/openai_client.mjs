// The official `openai` Node SDK as its README shows it, against AGENT_API_BASE_URL with
// AGENT_API_KEY. `node openai_client.mjs chat|stream|tools` prints one JSON line of results.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.AGENT_API_BASE_URL,
  apiKey: process.env.AGENT_API_KEY,
  maxRetries: 0,
});
const model = "gpt-4o-mini";

async function chat() {
  const completion = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "Say hello" }],
  });
  const choice = completion.choices[0];
  return { content: choice.message.content, finish_reason: choice.finish_reason };
}

async function stream() {
  const events = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "Tell me a story" }],
    stream: true,
  });
  let text = "";
  let finishReason = null;
  for await (const chunk of events) {
    text += chunk.choices[0]?.delta?.content ?? "";
    finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
  }
  return { content: text, finish_reason: finishReason };
}

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "The current weather in a city.",
      parameters: {
        type: "object",
        properties: { city: { type: "string" } },
        required: ["city"],
        additionalProperties: false,
      },
    },
  },
];

function getWeather({ city }) {
  return { city, temp_c: 21, sky: "sunny" };
}

async function toolLoop() {
  const messages = [{ role: "user", content: "What's the weather in Paris?" }];
  const first = await client.chat.completions.create({ model, messages, tools });
  const message = first.choices[0].message;
  messages.push(message);
  for (const call of message.tool_calls ?? []) {
    const result = getWeather(JSON.parse(call.function.arguments));
    messages.push({ role: "tool", tool_call_id: call.id, content: JSON.stringify(result) });
  }
  const second = await client.chat.completions.create({ model, messages, tools });
  return {
    first_finish_reason: first.choices[0].finish_reason,
    calls: (message.tool_calls ?? []).map((c) => ({ name: c.function.name, arguments: c.function.arguments })),
    content: second.choices[0].message.content,
    finish_reason: second.choices[0].finish_reason,
  };
}

const modes = { chat, stream, tools: toolLoop };
console.log(JSON.stringify(await modes[process.argv[2]]()));
