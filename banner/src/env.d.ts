// CSS is imported as minified text (see banner.go) and put into the shadow root.
declare module '*.css' {
  const css: string;
  export default css;
}
