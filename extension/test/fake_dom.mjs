// A tiny stand-in for `document`, enough for lib/render.js: it records the tree, and any
// attempt to parse markup (innerHTML, outerHTML, insertAdjacentHTML) throws.

class FakeNode {
  constructor(tag, namespace) {
    this.tagName = tag;
    this.namespaceURI = namespace;
    this.children = [];
    this.attributes = {};
    this.style = {};
    this.listeners = {};
    this.ownText = "";
  }

  set textContent(value) {
    this.children = [];
    this.ownText = String(value);
  }

  get textContent() {
    return this.ownText + this.children.map((child) => child.textContent).join("");
  }

  set innerHTML(_value) {
    throw new Error("innerHTML used");
  }

  set outerHTML(_value) {
    throw new Error("outerHTML used");
  }

  insertAdjacentHTML() {
    throw new Error("insertAdjacentHTML used");
  }

  append(...nodes) {
    for (const node of nodes) {
      if (!(node instanceof FakeNode)) throw new Error(`append() of a ${typeof node}: strings would be parsed`);
      this.children.push(node);
    }
  }

  appendChild(node) {
    this.append(node);
    return node;
  }

  setAttribute(name, value) {
    this.attributes[name] = String(value);
  }

  addEventListener(type, handler) {
    (this.listeners[type] ??= []).push(handler);
  }

  /** Every node under this one, itself first. */
  *walk() {
    yield this;
    for (const child of this.children) yield* child.walk();
  }

  find(className) {
    return [...this.walk()].filter((node) => (node.className ?? "").split(" ").includes(className));
  }
}

export function fakeDocument() {
  return {
    createElement: (tag) => new FakeNode(tag.toLowerCase(), "http://www.w3.org/1999/xhtml"),
    createElementNS: (namespace, tag) => new FakeNode(tag, namespace),
  };
}
