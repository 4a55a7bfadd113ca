"""Questions no customer-service knowledge base answers: greetings, thanks, chit-chat, requests of a chatbot.

The matcher compares each question with these; a question closer to one of them than to any article is
probably not for the knowledge base. Written for kefu, independently of any evaluation set.
"""

from __future__ import annotations

OUT_OF_SCOPE = (
    "您好呀",
    "哈喽",
    "嗨 有人吗",
    "在不在",
    "早安",
    "晚上好",
    "多谢啦",
    "好的 知道了",
    "没问题了 拜拜",
    "你叫什么名字",
    "你是真人还是AI",
    "讲个段子听听",
    "明天会下雨吗",
    "帮我写首诗",
    "一加一等于几",
    "你们公司有多少员工",
    "你多大了",
    "我心情不好 陪我聊聊",
    "推荐一部电影",
    "帮我翻译一句话",
    "hello there",
    "hey",
    "thanks a lot",
    "good evening",
    "are you a real person",
    "what is your name",
    "tell me something funny",
    "will it rain tomorrow",
    "write me a poem",
    "what is the meaning of life",
)
